"""Production: PostgreSQL and Redis are required; secrets must come from the environment."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from pneumoweb.env import env_bool, env_int, env_secret

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL

DEBUG = False
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production requires DATABASE_URL pointing at PostgreSQL.")
if not REDIS_URL:
    raise ImproperlyConfigured("Production requires REDIS_URL (Celery broker).")
SESSION_COOKIE_SECURE = env_bool("PNEUMO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

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
