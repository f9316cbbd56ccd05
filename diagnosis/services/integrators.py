"""Integrator accounts: systems that submit studies over the API and see only their own studies."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.authtoken.models import Token

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import AuditAction
from diagnosis.selectors.studies import INTEGRATOR_GROUP
from diagnosis.services.audit import audit_record


@transaction.atomic
def integrator_create(*, name: str, actor: User | None = None) -> tuple[User, str]:
    """Create the account (token only, no password), put it in the integrator group, audit it; return its token."""
    user_model = get_user_model()
    if user_model.objects.filter(username=name).exists():
        raise InvalidInputError(f"An account named {name!r} already exists.")
    user = user_model.objects.create_user(username=name)
    user.set_unusable_password()  # token only: an integrator never logs in to the dashboard
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=INTEGRATOR_GROUP))
    token = Token.objects.create(user=user)
    audit_record(action=AuditAction.INTEGRATOR_CREATED, subject_type="user", subject_id=name, actor=actor)
    return user, token.key
