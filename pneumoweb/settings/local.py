"""Local development: `make run` uses these settings (SQLite + filesystem broker unless the env says otherwise)."""

from __future__ import annotations

from .base import *  # noqa: F403

DEBUG = True

# Zero-setup: the SQLite file, uploads, models and the filesystem broker all live under var/.
from .base import CELERY_FS_DIR, VAR_DIR  # noqa: E402

for _folder in (VAR_DIR, CELERY_FS_DIR / "queue", CELERY_FS_DIR / "processed", CELERY_FS_DIR / "control"):
    _folder.mkdir(parents=True, exist_ok=True)

# --- Demo model (issue 8, auth helper): `make run` serves the untrained demo model unless told otherwise ----------
from pneumoweb.env import env_bool  # noqa: E402

PNEUMO_ALLOW_DEMO_MODEL = env_bool("PNEUMO_ALLOW_DEMO_MODEL", default=True)
