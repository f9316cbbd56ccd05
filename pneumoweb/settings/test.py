"""Unit-test settings. Integration tests start a real worker with these settings plus a real broker."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Unit tests run tasks in-process; the integration suite overrides this for its real worker.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("PNEUMO_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
# Per-process folders, created only when something is written there (and removed by tests/conftest.py).
STORAGES["default"]["OPTIONS"]["location"] = os.environ.get(
    "PNEUMO_STORAGE_DIR", os.path.join(tempfile.gettempdir(), f"pneumoweb-test-storage-{os.getpid()}")
)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"uploads": os.environ.get("PNEUMO_UPLOAD_RATE", "1000/min")}
AXES_ENABLED = os.environ.get("PNEUMO_AXES_ENABLED", "1") == "1"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
# Throttle counters must not leak between test runs through a shared Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Static files come straight from the apps in tests (no collectstatic run).
STATIC_ROOT = Path(tempfile.gettempdir()) / "pneumoweb-test-static"
os.makedirs(STATIC_ROOT, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Model artifacts written by tests (imports, demo models) never land in the repository's var/ folder.
PNEUMO_MODEL_DIR = Path(
    os.environ.get("PNEUMO_MODEL_DIR", os.path.join(tempfile.gettempdir(), f"pneumoweb-test-models-{os.getpid()}"))
)

# --- Demo model (issue 8, auth helper): tests serve tiny untrained models; PNEUMO_ALLOW_DEMO_MODEL=0 tests refusal --
PNEUMO_ALLOW_DEMO_MODEL = os.environ.get("PNEUMO_ALLOW_DEMO_MODEL", "1") == "1"
