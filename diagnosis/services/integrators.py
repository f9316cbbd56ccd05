"""Integrator accounts: systems that submit studies over the API and see only their own studies.

API tokens are django-rest-knox tokens: the database keeps a SHA-512 digest (and knox's 15-character lookup
prefix), never the token itself, and every token expires after ``PNEUMO_API_TOKEN_TTL_DAYS``. The token is
returned to the caller once, to be shown once; it is never written to the audit log or any other log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from knox.models import AuthToken

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import AuditAction
from diagnosis.selectors.studies import INTEGRATOR_GROUP
from diagnosis.services.audit import audit_record


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued API token: ``key`` is the secret, available only here, only now."""

    key: str
    expires_at: datetime | None
    revoked: int = 0


def _token_issue(user: User) -> IssuedToken:
    instance, key = AuthToken.objects.create(user=user)  # expiry: knox's TOKEN_TTL (PNEUMO_API_TOKEN_TTL_DAYS)
    return IssuedToken(key=key, expires_at=instance.expiry)


@transaction.atomic
def integrator_create(*, name: str, actor: User | None = None) -> tuple[User, IssuedToken]:
    """Create the account (token only, no password), put it in the integrator group, audit it; return its token."""
    user_model = get_user_model()
    if user_model.objects.filter(username=name).exists():
        raise InvalidInputError(f"An account named {name!r} already exists.")
    user = user_model.objects.create_user(username=name)
    user.set_unusable_password()  # token only: an integrator never logs in to the dashboard
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=INTEGRATOR_GROUP))
    token = _token_issue(user)
    audit_record(
        action=AuditAction.INTEGRATOR_CREATED,
        subject_type="user",
        subject_id=name,
        actor=actor,
        details={"token_expires_at": token.expires_at},
    )
    return user, token


@transaction.atomic
def integrator_token_rotate(*, name: str, keep_old: bool = False, actor: User | None = None) -> IssuedToken:
    """Issue a new token for the integrator ``name``; revoke its other tokens unless ``keep_old`` (they then expire
    on their own schedule, giving the integrator time to switch). Audited."""
    user = get_user_model().objects.filter(username=name, groups__name=INTEGRATOR_GROUP).select_for_update().first()
    if user is None:
        raise InvalidInputError(f"No integrator account named {name!r}.")
    revoked = 0
    if not keep_old:
        revoked, _ = AuthToken.objects.filter(user=user).delete()
    token = _token_issue(user)
    audit_record(
        action=AuditAction.INTEGRATOR_TOKEN_ROTATED,
        subject_type="user",
        subject_id=name,
        actor=actor,
        details={"revoked_tokens": revoked, "kept_old_tokens": keep_old, "token_expires_at": token.expires_at},
    )
    return IssuedToken(key=token.key, expires_at=token.expires_at, revoked=revoked)
