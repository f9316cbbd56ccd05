"""docs/ARCHITECTURE.md names real modules: a path it mentions that no longer exists fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGES = ("pneumoweb", "diagnosis", "mlcore", "templates", "tests")
# `mlcore/metrics.py`, `diagnosis/admin/`, and a bare file name after a folder: (`studies.py`, ...) in one cell.
PATH = re.compile(r"`((?:{})/[A-Za-z0-9_./-]*)`".format("|".join(PACKAGES)))
LISTED = re.compile(r"`(diagnosis/[a-z_]+/)` \(([^)]*)\)")


def named_paths(text: str) -> set[str]:
    paths = set(PATH.findall(text))
    for folder, names in LISTED.findall(text):
        paths |= {folder + name for name in re.findall(r"`([A-Za-z0-9_]+\.py)`", names)}
    return paths


def test_every_module_path_in_the_architecture_doc_exists() -> None:
    paths = named_paths(DOC.read_text(encoding="utf-8"))
    assert len(paths) > 40, sorted(paths)  # the doc really names the code
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_checker_sees_a_path_that_does_not_exist() -> None:
    assert named_paths("`diagnosis/services/` (`nope.py`) and `mlcore/gone.py`") == {
        "diagnosis/services/",
        "diagnosis/services/nope.py",
        "mlcore/gone.py",
    }


def test_every_package_of_the_app_is_described() -> None:
    text = DOC.read_text(encoding="utf-8")
    packages = [
        p.name
        for p in (ROOT / "diagnosis").iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name != "migrations"
    ]
    assert packages
    undocumented = sorted(name for name in packages if f"diagnosis/{name}/" not in text)
    assert not undocumented, f"docs/ARCHITECTURE.md does not say what these folders hold: {undocumented}"
