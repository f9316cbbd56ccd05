"""Receivers of Django's login, failed-login and logout signals: thin adapters onto the access-audit service.

Django sends these from ``django.contrib.auth.login``/``authenticate``/``logout``, so the dashboard's login page
and the admin's are both covered. A signal is the only hook Django gives for failed logins, and the receivers hold
no logic of their own: the audit row is written by :mod:`diagnosis.services.access_audit`. Connected in
``DiagnosisConfig.ready``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from diagnosis.services.access_audit import user_login_failure_record, user_login_record, user_logout_record


@receiver(user_logged_in, dispatch_uid="pneumoweb-audit-login")
def _audit_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    user_login_record(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="pneumoweb-audit-login-failed")
def _audit_login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    user_login_failure_record(credentials=credentials or {}, request=request)


@receiver(user_logged_out, dispatch_uid="pneumoweb-audit-logout")
def _audit_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    user_logout_record(user=user, request=request)
