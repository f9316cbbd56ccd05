"""Production: PostgreSQL and Redis are required; secrets must come from the environment."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from pneumoweb.env import env_bool, env_int, env_key_id, env_keyring, env_secret

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

# --- HTTP hardening (issue 8): transport (https://docs.djangoproject.com/en/5.2/ref/middleware/#http-strict-transport-security)
# TLS ends at nginx or at the hospital's load balancer in front of it, which says so in X-Forwarded-Proto
# (SECURE_PROXY_SSL_HEADER above; deploy/nginx.conf forwards it). Plain-HTTP requests are redirected to HTTPS,
# except the probes and the metrics scrape, which come over plain HTTP from inside the network.
SECURE_SSL_REDIRECT = env_bool("PNEUMO_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# One year, the subdomains too, and the preload flag (browsers' preload lists still need a manual submission).
# Set PNEUMO_HSTS_SECONDS=0 for a site that must stay reachable over plain HTTP.
SECURE_HSTS_SECONDS = env_int("PNEUMO_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PNEUMO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("PNEUMO_HSTS_PRELOAD", default=True)

# --- Issue 10 (H6): a PNG/JPEG upload must name its patient in production -----------------------------------------
PNEUMO_UPLOAD_REQUIRE_PATIENT_ID = env_bool("PNEUMO_UPLOAD_REQUIRE_PATIENT_ID", default=True)
