"""Management commands for operators: accounts, audit verification."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from diagnosis.models import AuditAction, AuditEvent
from diagnosis.services.audit import audit_record

pytestmark = pytest.mark.django_db


def test_create_integrator_prints_a_working_token() -> None:
    out = io.StringIO()
    call_command("create_integrator", "ris-gateway", stdout=out)
    user = User.objects.get(username="ris-gateway")
    token = out.getvalue().split("API token: ")[1].split()[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/studies/").status_code == 200
    assert list(user.groups.values_list("name", flat=True)) == ["integrator"]
    assert not user.has_usable_password()
    with pytest.raises(CommandError):
        call_command("create_integrator", "ris-gateway", stdout=io.StringIO())


def test_ensure_admin_creates_one_admin_once() -> None:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    assert "Password:" in out.getvalue()
    password = out.getvalue().split("Password:")[1].split()[0]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "already exists" in again.getvalue()
    assert User.objects.filter(is_superuser=True).count() == 1
    # Audited once, without the password.
    created = AuditEvent.objects.get(action=AuditAction.USER_CREATED)
    assert created.subject_id == "admin"
    assert (created.details["superuser"], created.details["password"]) == (True, "generated")
    assert password not in str(created.details)


def test_verify_audit_chain_reports_the_count() -> None:
    for i in range(4):
        audit_record(action="test.event", subject_type="study", subject_id=str(i))
    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out)
    assert "intact" in out.getvalue() and " 4 events" in out.getvalue()
