"""Audit access to the application: logins, failed logins, logouts, and lists of studies a user was shown.

A hospital's review asks who logged in from where, who tried and failed (password guessing shows up here before
the lockout), and who saw which patients' studies, lists included. The password is never recorded: Django's
``user_login_failed`` signal already hands over cleansed credentials, and only the username is taken from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from diagnosis.models import AuditAction, AuditEvent
from diagnosis.services.audit import audit_record

# AuditEvent.subject_id holds 100 characters; a username typed at a login form may be anything.
_SUBJECT_MAX = 100
# The session key under which the last audited list of a polled page is remembered (see study_list_record_view).
_LAST_LIST_KEY = "pneumo_last_audited_list"


def user_login_record(*, user: User, request: HttpRequest | None) -> AuditEvent:
    """A user logged in (dashboard or admin). The client IP comes from the request."""
    return audit_record(
        action=AuditAction.USER_LOGGED_IN,
        subject_type="user",
        subject_id=user.get_username()[:_SUBJECT_MAX],
        actor=user,
        request=request,
    )


def user_login_failure_record(*, credentials: Mapping[str, Any], request: HttpRequest | None) -> AuditEvent:
    """A login failed (wrong password, unknown user, or locked out): record the username tried, never the password."""
    attempted = str(credentials.get("username") or "")
    return audit_record(
        action=AuditAction.USER_LOGIN_FAILED,
        subject_type="user",
        subject_id=attempted[:_SUBJECT_MAX],
        request=request,
        details={"username_attempted": attempted[:_SUBJECT_MAX], "truncated": len(attempted) > _SUBJECT_MAX},
    )


def user_logout_record(*, user: User | AnonymousUser | None, request: HttpRequest | None) -> AuditEvent | None:
    """A user logged out. A logout without a session (already expired) is not an event."""
    if user is None or not user.is_authenticated:
        return None
    return audit_record(
        action=AuditAction.USER_LOGGED_OUT,
        subject_type="user",
        subject_id=user.get_username()[:_SUBJECT_MAX],
        actor=user,
        request=request,
    )


def study_list_record_view(
    *,
    user: User,
    study_ids: Sequence[object],
    request: HttpRequest | None,
    where: str,
    page: int | None = None,
    total: int | None = None,
    remember_in_session: bool = False,
    skip_if_unchanged: bool = False,
) -> AuditEvent | None:
    """Record that ``user`` was shown the studies ``study_ids`` (one event per page shown).

    An empty page shows no patient data and is not recorded. The dashboard remembers the last list it audited in
    the session (``remember_in_session``); the worklist's script polls every few seconds with ``skip_if_unchanged``,
    so a poll showing exactly the ids already recorded for this session is not recorded again: the log keeps who
    saw which studies without one identical row per poll.
    """
    ids = [str(study_id) for study_id in study_ids]
    if not ids:
        return None
    session = getattr(request, "session", None) if remember_in_session else None
    fingerprint = hashlib.sha256(f"{where}:{','.join(ids)}".encode()).hexdigest()
    if skip_if_unchanged and session is not None and session.get(_LAST_LIST_KEY) == fingerprint:
        return None
    event = audit_record(
        action=AuditAction.STUDY_LIST_VIEWED,
        subject_type="study_list",
        subject_id=where,
        actor=user,
        request=request,
        details={"study_ids": ids, "page": page, "total": total},
    )
    if session is not None:
        session[_LAST_LIST_KEY] = fingerprint
    return event


def study_fhir_record_view(
    *, study_id: str, user: User, report_status: str, request: HttpRequest | None = None
) -> AuditEvent:
    """A user (an EHR's integrator account, say) read the FHIR DiagnosticReport of a study, in that status."""
    return audit_record(
        action=AuditAction.STUDY_FHIR_VIEWED,
        subject_type="study",
        subject_id=study_id,
        actor=user,
        request=request,
        details={"report_status": report_status},
    )
