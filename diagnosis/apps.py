from __future__ import annotations

from django.apps import AppConfig


class DiagnosisConfig(AppConfig):
    name = "diagnosis"
    verbose_name = "Diagnosis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the Celery tasks in every process (web included): services enqueue them by name
        # (diagnosis.services.dispatch) and never import the task modules themselves.
        from diagnosis import tasks  # noqa: F401

        # Logins, failed logins and logouts are audited (receivers of django.contrib.auth's signals).
        from diagnosis.dashboard import auth_events  # noqa: F401
