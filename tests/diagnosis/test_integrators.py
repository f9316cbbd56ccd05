"""The integrator service: an API-only account in the integrator group, a token, and its audit row."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from knox.models import AuthToken

from diagnosis.exceptions import InvalidInputError
from diagnosis.models import AuditEvent
from diagnosis.services.audit import audit_chain_verify
from diagnosis.services.integrators import integrator_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_it_creates_a_token_only_account_in_the_integrator_group_and_audits_who_did_it() -> None:
    admin = UserFactory(username="ops-admin", is_staff=True)
    user, issued = integrator_create(name="pacs-router", actor=admin)
    token = issued.key
    assert AuthToken.objects.get(user=user).token_key == token[:15] and len(token) == 64
    assert list(user.groups.values_list("name", flat=True)) == ["integrator"]
    assert not user.has_usable_password()
    event = AuditEvent.objects.get(action="integrator.created")
    assert (event.subject_type, event.subject_id, event.actor_id, event.actor_name) == (
        "user",
        "pacs-router",
        admin.pk,
        "ops-admin",
    )
    assert token not in str(event.details)  # the secret never lands in the audit log
    assert audit_chain_verify().ok


def test_it_refuses_a_taken_name_and_writes_nothing() -> None:
    integrator_create(name="ris-gateway")
    with pytest.raises(InvalidInputError, match="already exists"):
        integrator_create(name="ris-gateway")
    assert User.objects.filter(username="ris-gateway").count() == 1
    assert AuditEvent.objects.filter(action="integrator.created").count() == 1
