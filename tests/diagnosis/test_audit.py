"""The audit log is append-only and its hash chain detects tampering."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from diagnosis.models import AuditEvent
from diagnosis.models.audit import AppendOnlyError
from diagnosis.services.audit import audit_chain_verify, audit_record

pytestmark = pytest.mark.django_db


def _three_events() -> list[AuditEvent]:
    return [
        audit_record(action=f"test.{i}", subject_type="study", subject_id=str(i), details={"n": i, "x": 0.1})
        for i in range(3)
    ]


def test_events_chain_to_each_other_and_verify() -> None:
    events = _three_events()
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    result = audit_chain_verify()
    assert result.ok and result.checked == AuditEvent.objects.count()


def test_the_app_cannot_edit_or_delete_events() -> None:
    event = _three_events()[0]
    event.action = "test.changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_updates_behind_the_apps_back() -> None:
    event = _three_events()[0]
    if connection.vendor not in ("postgresql", "sqlite"):
        pytest.skip("trigger only installed on PostgreSQL and SQLite")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE diagnosis_auditevent SET action = 'forged' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id = %s", [event.pk])


def _disable_trigger_and(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE diagnosis_auditevent DISABLE TRIGGER diagnosis_auditevent_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE diagnosis_auditevent ENABLE TRIGGER diagnosis_auditevent_append_only")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL to disable the trigger")
def test_verification_finds_an_altered_event() -> None:
    events = _three_events()
    _disable_trigger_and("UPDATE diagnosis_auditevent SET details = %s WHERE id = %s", ['{"n": 99}', events[1].pk])
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_id == events[1].pk and "altered" in result.reason


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL to disable the trigger")
def test_verification_finds_a_removed_event() -> None:
    events = _three_events()
    _disable_trigger_and("DELETE FROM diagnosis_auditevent WHERE id = %s", [events[1].pk])
    result = audit_chain_verify()
    assert not result.ok and result.first_bad_id == events[2].pk
