"""`manage.py create_radiologist`: a radiologist account, a one-time password (or one from stdin), audited."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from diagnosis.models import AuditEvent
from diagnosis.services.audit import audit_chain_verify

pytestmark = pytest.mark.django_db


def _run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command("create_radiologist", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_radiologist_with_a_one_time_password_that_logs_in() -> None:
    output = _run("rita.marsh", "--email", "rita.marsh@example.org")
    password = output.split("One-time password:")[1].split()[0]
    user = User.objects.get(username="rita.marsh")
    assert list(user.groups.values_list("name", flat=True)) == ["radiologist"]
    assert (user.email, user.is_staff, user.is_superuser) == ("rita.marsh@example.org", False, False)
    assert len(password) >= 16 and user.check_password(password)
    assert "shown only this once" in output and "does not force a change" in output

    client = Client()
    response = client.post("/accounts/login/", {"username": "rita.marsh", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/accounts/password_change/").status_code == 200  # where she picks her own

    event = AuditEvent.objects.get(action="user.created")
    assert (event.subject_type, event.subject_id, event.actor_id) == ("user", "rita.marsh", None)
    assert event.details["groups"] == ["radiologist"] and event.details["password"] == "generated"
    assert password not in str(event.details)
    assert audit_chain_verify().ok


def test_it_reads_the_password_from_stdin_and_prints_none(monkeypatch: pytest.MonkeyPatch) -> None:
    output = _run("sam.lee", "--password-stdin", stdin="a-long-passphrase-from-vault\n", monkeypatch=monkeypatch)
    assert "One-time password" not in output and "a-long-passphrase-from-vault" not in output
    assert User.objects.get(username="sam.lee").check_password("a-long-passphrase-from-vault")
    assert AuditEvent.objects.get(action="user.created").details["password"] == "given"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("short\n", "too short"), ("password123\n", "too common"), ("\n", "held no password")],
)
def test_it_refuses_a_weak_or_empty_password_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, stdin: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        _run("weak.user", "--password-stdin", stdin=stdin, monkeypatch=monkeypatch)
    assert not User.objects.filter(username="weak.user").exists()
    assert not AuditEvent.objects.filter(action="user.created").exists()


def test_it_refuses_a_taken_name_and_a_bad_email(admin_user: Any) -> None:
    with pytest.raises(CommandError, match="already exists"):
        _run(admin_user.username)
    with pytest.raises(CommandError, match="Not an e-mail address"):
        _run("new.user", "--email", "not-an-address")
    assert not User.objects.filter(username="new.user").exists()
    assert not AuditEvent.objects.filter(action="user.created").exists()
