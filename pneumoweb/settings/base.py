"""Base settings: everything lives here; local/test/production only override.

Configuration comes from the environment (12-factor). With neither ``DATABASE_URL`` nor ``REDIS_URL`` set,
PneumoWeb runs on SQLite and Celery's filesystem transport, so ``make run`` needs no server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE

from pneumoweb.env import env_bool, env_int, env_key_id, env_keyring, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("PNEUMO_VAR_DIR", str(BASE_DIR / "var")))

# --- Core (https://docs.djangoproject.com/en/5.2/ref/settings/) ---------------------------------------------
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored hashed, with an expiry (issue 8); replaces rest_framework.authtoken
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: no CDN on a hospital network
    "axes",
    "csp",  # django-csp: Content-Security-Policy header (its system checks catch settings of the old format)
    "diagnosis",
]

MIDDLEWARE = [
    "diagnosis.ops.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # HTTP hardening (issue 8): no-store on every dynamic response (static files are answered above, by WhiteNoise).
    "diagnosis.ops.middleware.NoStoreMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # HTTP hardening (issue 8): refuse oversized bodies from the headers alone, before CSRF or a view reads them;
    # needs request.user, so it comes right after AuthenticationMiddleware.
    "diagnosis.ops.body_limit.RequestBodyLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # AxesMiddleware should be the last middleware (django-axes docs).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # AxesStandaloneBackend must come first: it refuses locked-out credentials before any other backend runs.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "pneumoweb.urls"
WSGI_APPLICATION = "pneumoweb.wsgi.application"
ASGI_APPLICATION = "pneumoweb.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database (https://github.com/jazzband/dj-database-url) -------------------------------------------------
# PostgreSQL in production; SQLite is the zero-setup default.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'pneumoweb.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server write concurrently; WAL plus a busy timeout keeps SQLite from
    # answering "database is locked" under that light load; IMMEDIATE takes the write lock up front instead of
    # failing when a read transaction later tries to write.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("PNEUMO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES: dict[str, dict[str, Any]] = {
    # Uploaded X-rays are patient data: they live under PNEUMO_STORAGE_DIR, never under a public or static folder,
    # and are served only through views that check permissions.
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(env_str("PNEUMO_STORAGE_DIR", str(VAR_DIR / "storage")))), "base_url": None},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:worklist"
LOGOUT_REDIRECT_URL = "login"

# --- Security ---------------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("PNEUMO_SESSION_SECONDS", 8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# --- HTTP hardening (issue 8): Content-Security-Policy (django-csp 4, https://django-csp.readthedocs.io/) ---
# Scripts only from our own static files: no inline script, no event-handler attributes, no eval; a test scans
# templates/ for them. Styles allow inline: the admin's and Swagger UI's <style> blocks and a few computed widths
# (style attributes cannot run code). Nothing may frame the site, and forms post only to it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
# django-axes: lock an account+address after repeated failed logins (https://django-axes.readthedocs.io/).
AXES_COOLOFF_TIME = 0.25  # hours
AXES_RESET_ON_SUCCESS = True

# --- Login lockout and API tokens (issue 8, auth helper) ----------------------------------------------------------
# Password spraying (one password against many usernames from one address) is limited by the address alone, with a
# higher limit than one account (a ward shares one NAT address). Axes compares every parameter with one limit, so
# the limit is a callable that picks the right one: see diagnosis/dashboard/lockout.py.
PNEUMO_LOGIN_FAILURE_LIMIT = env_int("PNEUMO_LOGIN_FAILURE_LIMIT", 5)
PNEUMO_LOGIN_IP_FAILURE_LIMIT = env_int("PNEUMO_LOGIN_IP_FAILURE_LIMIT", 30)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]  # order matters: see login_failure_limit
AXES_FAILURE_LIMIT = "diagnosis.dashboard.lockout.login_failure_limit"
# A locked login answers 429 with Retry-After (seconds until the cool-off ends).
AXES_LOCKOUT_CALLABLE = "diagnosis.dashboard.lockout.lockout_response"
# API tokens (django-rest-knox, https://jazzband.github.io/django-rest-knox/settings/): stored as SHA-512 digests,
# shown once by `create_integrator` / `rotate_integrator_token`, valid PNEUMO_API_TOKEN_TTL_DAYS days. Clients keep
# sending `Authorization: Token <key>`.
PNEUMO_API_TOKEN_TTL_DAYS = env_int("PNEUMO_API_TOKEN_TTL_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=PNEUMO_API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,  # a token expires on schedule however often it is used: rotation is deliberate
    "TOKEN_LIMIT_PER_USER": None,  # tokens come from commands only; rotation keeps old ones only when asked
}
# An untrained demo model (create_demo_model) is never served unless explicitly allowed: production says no by
# default and a worker refuses to start (diagnosis/tasks/worker.py); local and test settings allow it.
PNEUMO_ALLOW_DEMO_MODEL = env_bool("PNEUMO_ALLOW_DEMO_MODEL", default=False)

# --- Audit chain (diagnosis/services/audit_signing.py, audit_checkpoints.py) ------------------------------------
# HMAC keys for the audit chain, held OUTSIDE the database: key id -> secret, as JSON ({"2026-11": "..."}) or
# "id:secret,id:secret", in PNEUMO_AUDIT_KEYS or the file PNEUMO_AUDIT_KEYS_FILE names. PNEUMO_AUDIT_KEY_ID picks
# the key new events are signed with; keep an old key configured while events signed with it must still verify.
# Production settings require real keys; the default below is for development and tests only.
DEV_AUDIT_KEY_ID = "dev-insecure"
PNEUMO_AUDIT_KEYS = env_keyring(
    "PNEUMO_AUDIT_KEYS", default={DEV_AUDIT_KEY_ID: "INSECURE-development-audit-key-never-use-in-production"}
)
PNEUMO_AUDIT_KEY_ID = env_key_id("PNEUMO_AUDIT_KEY_ID", PNEUMO_AUDIT_KEYS)
# Signed copies of the chain head, appended here by the beat task below: keep this file off the database's host
# (another volume, shipped to append-only storage); `verify_audit_chain --checkpoints FILE` checks against it.
PNEUMO_AUDIT_CHECKPOINT_FILE = Path(
    env_str("PNEUMO_AUDIT_CHECKPOINT_FILE", str(VAR_DIR / "audit" / "checkpoints.jsonl"))
)
PNEUMO_AUDIT_CHECKPOINT_SECONDS = env_int("PNEUMO_AUDIT_CHECKPOINT_SECONDS", 300)

# --- Uploads ---------------------------------------------------------------------------------------------------
# DATA_UPLOAD_MAX_MEMORY_SIZE does not cover file data: the API checks PNEUMO_MAX_UPLOAD_BYTES itself.
PNEUMO_MAX_UPLOAD_BYTES = env_int("PNEUMO_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
PNEUMO_MAX_IMAGE_PIXELS = env_int("PNEUMO_MAX_IMAGE_PIXELS", 50_000_000)
# The same file from the same uploader within this window is a retry: it gets the existing study, not a second one.
PNEUMO_UPLOAD_DEDUPE_SECONDS = env_int("PNEUMO_UPLOAD_DEDUPE_SECONDS", 600)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# --- HTTP hardening (issue 8): request body limits ---
# Every route but the upload routes takes at most this many bytes (forms, JSON); upload routes take
# PNEUMO_MAX_UPLOAD_BYTES only from an authenticated caller (diagnosis.ops.body_limit).
PNEUMO_MAX_BODY_BYTES = env_int("PNEUMO_MAX_BODY_BYTES", 64 * 1024)
# Where Django spools uploads over FILE_UPLOAD_MAX_MEMORY_SIZE (default: the system's temporary folder).
FILE_UPLOAD_TEMP_DIR = env_str("PNEUMO_UPLOAD_TEMP_DIR", "") or None
FILE_UPLOAD_PERMISSIONS = 0o640

# --- HTTP hardening (issue 8): internals (diagnosis.ops.access) ---
# /metrics answers the bearer token or the listed client addresses/networks; /readyz shows anonymous callers only
# ready / not ready, and its details to staff or the token.
PNEUMO_METRICS_TOKEN = env_secret("PNEUMO_METRICS_TOKEN", default="")
PNEUMO_METRICS_ALLOWED_IPS = env_list("PNEUMO_METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# --- Models and ML ---------------------------------------------------------------------------------------------
PNEUMO_MODEL_DIR = Path(env_str("PNEUMO_MODEL_DIR", str(VAR_DIR / "models")))
PNEUMO_DEFAULT_TARGET_SENSITIVITY = float(env_str("PNEUMO_TARGET_SENSITIVITY", "0.95"))
# Population stability index of a version's live scores vs its validation scores above which admin warns of drift
# (the usual reading: < 0.1 stable, 0.1-0.2 some shift, > 0.2 significant shift).
PNEUMO_PSI_LIMIT = float(env_str("PNEUMO_PSI_LIMIT", "0.2"))
PNEUMO_POPULATION_NOTE = (
    "Sample data and any model trained on it are pediatric (Kermany et al. 2018, children aged 1–5, "
    "Guangzhou). Performance on adults is not established."
)

# --- Cache: shared by every process when Redis is there (upload throttling counts per site, not per process) ---
if REDIS_URL := env_str("REDIS_URL", ""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pneumoweb",
            # An unreachable Redis must cost an upload a second, not a hung request (throttling then fails open).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

# --- Celery (https://docs.celeryq.dev/en/stable/userguide/configuration.html) ----------------------------------
CELERY_FS_DIR = VAR_DIR / "celery-broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    # No server needed: Celery's filesystem transport, still with a real, separate worker process.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FS_DIR / "queue"),
        "data_folder_out": str(CELERY_FS_DIR / "queue"),
        "processed_folder": str(CELERY_FS_DIR / "processed"),
        "store_processed": False,
    }
# Results live in the database (the source of truth), never in the broker.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
# A SIGKILLed child requeues its task; the attempt counter on the study stops a poison file from looping.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Below the Redis visibility timeout, so a task is never delivered twice while it still runs.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("PNEUMO_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("PNEUMO_TASK_TIME_LIMIT", 360)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("PNEUMO_WORKER_MAX_MEMORY_KB", 6_000_000)
# Address-space limit (RLIMIT_AS) of each inference pool child, so a decode that outgrows it fails its study with a
# reason instead of taking the host's memory (diagnosis/tasks/worker.py). A Celery child with TensorFlow and a model
# loaded peaks at about 2.4 GB of virtual memory (VmPeak on 2 cores, tests/integration/test_worker_memory_limit.py),
# so 6 GB leaves a margin of 2.5x; the 65500 x 65500 JPEG of issue 8 needed 4.3 GB more. 0 disables the limit.
# Workers that consume the training queue are never limited.
PNEUMO_WORKER_MEMORY_LIMIT_MB = env_int("PNEUMO_WORKER_MEMORY_LIMIT_MB", 6144)
CELERY_TASK_DEFAULT_QUEUE = "inference"
# Task names are their module paths (see diagnosis.services.dispatch).
CELERY_TASK_ROUTES = {
    "diagnosis.tasks.training.training_run_execute": {"queue": "training"},
    # Model lifecycle jobs that run TensorFlow (calibration on a labelled folder, .h5 import): never on inference.
    "diagnosis.tasks.lifecycle.model_version_calibrate_on_folder": {"queue": "training"},
    "diagnosis.tasks.lifecycle.model_version_register": {"queue": "training"},
    # The PACS peer (issue 9): grouping received instances into studies, building and sending results. A slow or
    # unreachable PACS must never hold up screening, so these have their own queue.
    "diagnosis.tasks.pacs.*": {"queue": "pacs"},
    "diagnosis.tasks.pacs_results.*": {"queue": "pacs"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
PNEUMO_MAX_INFERENCE_ATTEMPTS = env_int("PNEUMO_MAX_INFERENCE_ATTEMPTS", 3)
PNEUMO_STUCK_STUDY_SECONDS = env_int("PNEUMO_STUCK_STUDY_SECONDS", 600)
# A queued study that no worker has claimed this long after its last message is re-sent (Redis may have lost the
# message: it keeps nothing on disk). Duplicates are harmless: a claim is a conditional UPDATE.
PNEUMO_REQUEUE_QUEUED_SECONDS = env_int("PNEUMO_REQUEUE_QUEUED_SECONDS", 30)
# How often beat runs the reconciler: with the delay above, a lost study is re-sent within about 45 s.
PNEUMO_RECONCILE_SECONDS = env_int("PNEUMO_RECONCILE_SECONDS", 15)
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-studies": {
        "task": "diagnosis.tasks.inference.studies_requeue_stuck",
        "schedule": float(PNEUMO_RECONCILE_SECONDS),
    },
    "audit-checkpoint": {
        "task": "diagnosis.tasks.audit.audit_checkpoint_write",
        "schedule": float(PNEUMO_AUDIT_CHECKPOINT_SECONDS),
    },
}

# --- Storage faults: disk full, orphan files (issue 8 §3) ----------------------------------------------------------
# /readyz reports not ready below this much free space on the storage or model filesystem.
PNEUMO_STORAGE_MIN_FREE_MB = env_int("PNEUMO_STORAGE_MIN_FREE_MB", 200)
# A worker that cannot write its results (disk full, I/O error) retries with backoff up to this many times
# (about five hours at the maximum delay) before the study fails; the attempt budget of poison files is not used.
PNEUMO_STORAGE_RETRY_LIMIT = env_int("PNEUMO_STORAGE_RETRY_LIMIT", 60)
PNEUMO_STORAGE_RETRY_MAX_SECONDS = env_int("PNEUMO_STORAGE_RETRY_MAX_SECONDS", 300)
# Files no row references are removed once older than this (uploads and workers write files before they commit).
PNEUMO_ORPHAN_GRACE_SECONDS = env_int("PNEUMO_ORPHAN_GRACE_SECONDS", 6 * 3600)
CELERY_BEAT_SCHEDULE["sweep-orphan-files"] = {
    "task": "diagnosis.tasks.storage.storage_sweep_orphans",
    "schedule": 3600.0,
}

# --- The PACS as a peer (issue 9; docs/DICOM_CONFORMANCE.md) -------------------------------------------------------
PNEUMO_DICOM_AE_TITLE = env_str("PNEUMO_DICOM_AE_TITLE", "PNEUMOWEB")
PNEUMO_DICOM_PORT = env_int("PNEUMO_DICOM_PORT", 11112)
# A DICOM study is screened once no instance of it has arrived for this long (a PACS sends a study image by image).
PNEUMO_DICOM_STABILITY_SECONDS = env_int("PNEUMO_DICOM_STABILITY_SECONDS", 5)
# Association limits of the listener: the association over the maximum is refused (A-ASSOCIATE-RJ, transient).
PNEUMO_DICOM_MAX_ASSOCIATIONS = env_int("PNEUMO_DICOM_MAX_ASSOCIATIONS", 10)
PNEUMO_DICOM_ACSE_TIMEOUT = env_int("PNEUMO_DICOM_ACSE_TIMEOUT", 30)
PNEUMO_DICOM_DIMSE_TIMEOUT = env_int("PNEUMO_DICOM_DIMSE_TIMEOUT", 30)
PNEUMO_DICOM_NETWORK_TIMEOUT = env_int("PNEUMO_DICOM_NETWORK_TIMEOUT", 60)
# Below this much free space on the storage filesystem, stores are refused with "out of resources" (0xA700).
PNEUMO_DICOM_MIN_FREE_MB = env_int("PNEUMO_DICOM_MIN_FREE_MB", PNEUMO_STORAGE_MIN_FREE_MB)
# STOW-RS request bodies (several instances in one request) may be larger than one upload.
PNEUMO_STOW_MAX_BYTES = env_int("PNEUMO_STOW_MAX_BYTES", 200 * 1024 * 1024)
# Sending results to a PACS: retries with exponential backoff (capped), then the send is `failed` with its reason.
PNEUMO_RESULT_SEND_MAX_RETRIES = env_int("PNEUMO_RESULT_SEND_MAX_RETRIES", 6)
PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS = env_int("PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS", 300)
# FHIR DiagnosticReport (GET /api/v1/studies/{id}/fhir/): the identifier system of the hospital's patient IDs (e.g.
# its MRN namespace URI), put on the report's subject. Empty: the subject carries the patient ID without a system.
PNEUMO_FHIR_PATIENT_ID_SYSTEM = env_str("PNEUMO_FHIR_PATIENT_ID_SYSTEM", "")
# The verifying organization of the radiologist's verified SR; empty: the source image's InstitutionName.
PNEUMO_DICOM_ORGANIZATION = env_str("PNEUMO_DICOM_ORGANIZATION", "")
# Safety net for results sent back to the PACS: work whose message Redis lost is queued again from the database.
CELERY_BEAT_SCHEDULE["reconcile-pacs-results"] = {
    "task": "diagnosis.tasks.pacs_results.pacs_results_reconcile",
    "schedule": 60.0,
}
# Safety net for the stability window: DICOM studies whose release message was lost are released by beat.
CELERY_BEAT_SCHEDULE["release-dicom-studies"] = {
    "task": "diagnosis.tasks.pacs.dicom_studies_release_due",
    "schedule": float(PNEUMO_RECONCILE_SECONDS),
}

# --- REST framework (https://www.django-rest-framework.org/api-guide/settings/) --------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"uploads": env_str("PNEUMO_UPLOAD_RATE", "120/min")},
    "EXCEPTION_HANDLER": "diagnosis.api.exceptions.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PneumoWeb API",
    "DESCRIPTION": "Chest X-ray pneumonia screening. Submit studies, fetch AI results with Grad-CAM. "
    + "Decision support only; every finding needs a radiologist's review.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two "status" choice sets, and one NORMAL/PNEUMONIA set shared by predictions and reviews.
    "ENUM_NAME_OVERRIDES": {
        "StudyStatusEnum": "diagnosis.models.Study.Status",
        "ModelVersionStatusEnum": "diagnosis.models.ModelVersion.Status",
        "FindingEnum": "diagnosis.models.Review.Finding",
    },
    # HTTP hardening (issue 8): 401/413/503 answered outside the views, documented on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "diagnosis.api.schema.add_common_error_responses",
    ],
}

# --- Logging: structured (JSON lines) with request and task ids -----------------------------------------------
LOG_LEVEL = env_str("PNEUMO_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "diagnosis.log_context.ContextFilter"}},
    "formatters": {"json": {"()": "diagnosis.log_context.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- Issue 10: onboarding, admin and accessibility ----------------------------------------------------------------
# The filesystem broker's exchange tables ("control" folder; kombu's default is ./control, in the working folder)
# live under var/ with the rest of `make run`'s state, not in the repository's root.
if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS["control_folder"] = str(CELERY_FS_DIR / "control")
# Live rates and AUC on the model version pages are shown only from this many reviewed studies of a version on
# ("too few reviewed studies" below it): a rate from 2 studies reads as a fact and is noise.
PNEUMO_LIVE_METRICS_MIN_N = env_int("PNEUMO_LIVE_METRICS_MIN_N", 30)
# The ResNet50 ImageNet (no-top) weights file. The training form offers ImageNet weights only when this file exists:
# a site without internet cannot download them. Default: where Keras keeps the file it downloaded
# ($KERAS_HOME/models, else ~/.keras/models).
PNEUMO_IMAGENET_WEIGHTS_FILE = Path(
    env_str(
        "PNEUMO_IMAGENET_WEIGHTS_FILE",
        str(
            Path(env_str("KERAS_HOME", str(Path.home() / ".keras")))
            / "models"
            / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
        ),
    )
)

# --- Issue 10: worklist, upload, patient header and intended use (H6) -------------------------------------------
# Waiting time on the worklist is coloured against this reporting target (minutes from arrival to first review):
# amber past half of it, red past it. Set it to the site's agreed turnaround for chest X-ray reports.
PNEUMO_TURNAROUND_TARGET_MINUTES = env_int("PNEUMO_TURNAROUND_TARGET_MINUTES", 60)
# PNG/JPEG files carry no patient identity: with this on, the dashboard refuses one without a patient ID (given per
# file on the upload page). DICOM files use their own header. Off for local development and tests, on in
# production (production.py), where an image nobody can attach to a patient cannot be reported.
PNEUMO_UPLOAD_REQUIRE_PATIENT_ID = env_bool("PNEUMO_UPLOAD_REQUIRE_PATIENT_ID", default=False)
# The upload page previews the chosen files before they are sent, from object URLs (blob:) that never leave the
# browser: img-src allows blob: for that (no script source is widened).
CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] = [*CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"], "blob:"]
