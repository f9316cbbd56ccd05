"""mlcore must never import Django, Celery or the web app (STYLE.md section 5).

The check runs in a fresh interpreter: the test process itself has Django
loaded by pytest-django, so ``sys.modules`` here proves nothing. Every module
of the package is imported, including ones added later, found with pkgutil.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("django", "celery", "diagnosis", "pneumoweb")

_SCRIPT = """
import importlib, json, pkgutil, sys
import mlcore
names = sorted(info.name for info in pkgutil.walk_packages(mlcore.__path__, prefix="mlcore."))
for name in names:
    importlib.import_module(name)
loaded = sorted({module.split(".")[0] for module in sys.modules})
pil_truncated = sys.modules["PIL.ImageFile"].LOAD_TRUNCATED_IMAGES if "PIL.ImageFile" in sys.modules else None
print(json.dumps({"modules": names, "roots": loaded, "pil_truncated": pil_truncated}))
"""


def _import_everything() -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=REPO_ROOT,
        # The caller's environment (DJANGO_SETTINGS_MODULE included) is kept, so
        # an import guarded by "if settings are configured" is caught too.
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_importing_every_mlcore_module_loads_no_web_framework():
    result = _import_everything()
    assert {"mlcore.errors", "mlcore.imaging", "mlcore.dicom", "mlcore.preprocessing", "mlcore.config"} <= set(
        result["modules"]
    )
    leaked = sorted(set(FORBIDDEN) & set(result["roots"]))
    assert leaked == [], f"mlcore imported {leaked}"
    # Some library setting this global would make truncated JPEGs decode silently.
    assert result["pil_truncated"] in (None, False)
