"""Production: PostgreSQL and Redis are required; secrets must come from the environment."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from pneumoweb.env import env_bool, env_key_id, env_keyring, env_secret

from .base import *  # noqa: F403
from .base import DATABASES, DEV_AUDIT_KEY_ID, REDIS_URL

DEBUG = False
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production requires DATABASE_URL pointing at PostgreSQL.")
if not REDIS_URL:
    raise ImproperlyConfigured("Production requires REDIS_URL (Celery broker).")
# The audit chain's keys must come from outside the database and outside the code (no development default).
PNEUMO_AUDIT_KEYS = env_keyring("PNEUMO_AUDIT_KEYS", min_length=32)
if DEV_AUDIT_KEY_ID in PNEUMO_AUDIT_KEYS:
    raise ImproperlyConfigured(f"PNEUMO_AUDIT_KEYS must not use the development key id {DEV_AUDIT_KEY_ID!r}.")
PNEUMO_AUDIT_KEY_ID = env_key_id("PNEUMO_AUDIT_KEY_ID", PNEUMO_AUDIT_KEYS)
SESSION_COOKIE_SECURE = env_bool("PNEUMO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Demo model (issue 8, auth helper): never serve an untrained model unless an operator says so ---------------
PNEUMO_ALLOW_DEMO_MODEL = env_bool("PNEUMO_ALLOW_DEMO_MODEL", default=False)
