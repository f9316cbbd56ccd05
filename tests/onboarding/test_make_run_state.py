"""`make run`'s state stays under var/: the filesystem broker's control folder included (it was ./control)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
django.setup()
from django.conf import settings
from kombu import Connection
options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
with Connection(settings.CELERY_BROKER_URL, transport_options=options) as connection:
    channel = connection.default_channel
    print(json.dumps({"setting": options["control_folder"], "kombu": str(channel.control_folder)}))
"""


def test_the_filesystem_broker_keeps_its_control_folder_under_var(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="pneumoweb.settings.local", PNEUMO_VAR_DIR=str(tmp_path / "var"))
    result = subprocess.run(  # noqa: S603  # our own interpreter and a fixed script
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    control = tmp_path / "var" / "celery-broker" / "control"
    assert seen == {"setting": str(control), "kombu": str(control)}
    assert control.is_dir()  # created by the local settings with the queue folders
    assert not (tmp_path / "control").exists()  # nothing in the working folder
