"""Someone who controls the database but not the audit key cannot rewrite the chain unnoticed (issue 8, point 1).

The attacks run as the table owner (the test connection is a superuser, stronger than the owner role), exactly as
the issue reproduced them: triggers disabled, an override rewritten as a confirmation by another radiologist, a
``study.viewed`` event deleted, every hash recomputed and the chain head moved to match. The attacker knows the
code (it is open source) but not ``PNEUMO_AUDIT_KEYS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from diagnosis.models import AuditAction, AuditChainHead, AuditEvent
from diagnosis.services.audit import audit_chain_verify, audit_record

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the owner's attack needs PostgreSQL"),
]

KEY_A = "test-audit-key-a-0123456789abcdef0123456789"
KEY_B = "test-audit-key-b-fedcba9876543210fedcba9876"


def _has_column(table: str, column: str) -> bool:
    with connection.cursor() as cursor:
        return column in {c.name for c in connection.introspection.get_table_description(cursor, table)}


def _canonical(row: AuditEvent, *, with_key_id: bool) -> str:
    """The event content as the (public) code serialises it; the attacker can read the code."""
    content: dict[str, Any] = {
        "created_at": row.created_at.isoformat(),
        "actor_id": row.actor_id,
        "actor_name": row.actor_name,
        "action": row.action,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "client_ip": row.client_ip,
        "request_id": row.request_id,
        "task_id": row.task_id,
        "details": row.details,
    }
    if with_key_id:
        content["key_id"] = row.key_id  # type: ignore[attr-defined]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def _forge_hash(row: AuditEvent, prev_hash: str, how: str) -> str:
    if how == "wrong-key":
        message = (prev_hash + _canonical(row, with_key_id=True)).encode()
        return hmac.new(b"guessed-key", message, hashlib.sha256).hexdigest()
    keyed = how == "sha256" and bool(getattr(row, "key_id", ""))
    return hashlib.sha256((prev_hash + _canonical(row, with_key_id=keyed)).encode()).hexdigest()


def _owner_rewrites_chain(how: str) -> None:
    """Recompute every hash from the first event on, then point the head at the new last hash."""
    keyed_events = _has_column("diagnosis_auditevent", "key_id")
    prev_hash = "0" * 64
    count = 0
    with connection.cursor() as cursor:
        for row in AuditEvent.objects.order_by("id"):
            if how == "sha256-as-legacy" and keyed_events:
                row.key_id = ""  # type: ignore[attr-defined]  # pose as a row written before the chain was keyed
            new_hash = _forge_hash(row, prev_hash, how)
            columns = "prev_hash = %s, hash = %s" + (", key_id = %s" if keyed_events else "")
            params: list[Any] = [prev_hash, new_hash] + ([row.key_id] if keyed_events else [])  # type: ignore[attr-defined]
            cursor.execute(f"UPDATE diagnosis_auditevent SET {columns} WHERE id = %s", [*params, row.id])  # noqa: S608
            prev_hash, count = new_hash, count + 1
        cursor.execute("UPDATE diagnosis_auditchainhead SET last_hash = %s, count = %s", [prev_hash, count])
        if how == "sha256-as-legacy" and _has_column("diagnosis_auditchainhead", "mac"):
            cursor.execute("UPDATE diagnosis_auditchainhead SET key_id = '', mac = ''")  # pose as never signed
        elif _has_column("diagnosis_auditchainhead", "mac"):
            forged = hmac.new(b"guessed-key", f"{count}:{prev_hash}".encode(), hashlib.sha256).hexdigest()
            cursor.execute("UPDATE diagnosis_auditchainhead SET mac = %s", [forged])


def _disable_triggers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE diagnosis_auditevent DISABLE TRIGGER USER")
        cursor.execute("ALTER TABLE diagnosis_auditchainhead DISABLE TRIGGER USER")


def _enable_triggers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE diagnosis_auditevent ENABLE TRIGGER USER")
        cursor.execute("ALTER TABLE diagnosis_auditchainhead ENABLE TRIGGER USER")


def _verify_command(*args: str) -> str:
    """Run ``verify_audit_chain``; return its failure message, or "intact: ..." when it passes."""
    try:
        call_command("verify_audit_chain", *args, stdout=open("/dev/null", "w"))  # noqa: SIM115
    except CommandError as error:
        return str(error)
    return "intact"


def _radiologists_work(radiologist: Any) -> tuple[AuditEvent, AuditEvent]:
    viewed = audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id="s-1", actor=radiologist)
    override = audit_record(
        action=AuditAction.STUDY_OVERRIDDEN,
        subject_type="study",
        subject_id="s-1",
        actor=radiologist,
        details={"finding": "NORMAL", "model_label": "PNEUMONIA", "agrees_with_model": False, "comment": ""},
    )
    for n in range(3):
        audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id=f"s-{n + 2}", actor=radiologist)
    return viewed, override


@pytest.mark.parametrize("how", ["sha256", "sha256-as-legacy", "wrong-key"])
def test_the_owner_without_the_key_cannot_rewrite_the_chain_unnoticed(
    how: str, radiologist: Any, other_radiologist: Any
) -> None:
    viewed, override = _radiologists_work(radiologist)
    assert _verify_command() == "intact"
    if how == "sha256" and not getattr(override, "key_id", ""):
        # Sanity check of the attacker's tool on a legacy chain: it reproduces the stored hashes exactly.
        assert _forge_hash(override, override.prev_hash, how) == override.hash

    _disable_triggers()
    with connection.cursor() as cursor:
        details = {"finding": "PNEUMONIA", "model_label": "PNEUMONIA", "agrees_with_model": True, "comment": ""}
        cursor.execute(
            "UPDATE diagnosis_auditevent SET action = %s, actor_id = %s, actor_name = %s, details = %s WHERE id = %s",
            [
                AuditAction.STUDY_REVIEWED,
                other_radiologist.id,
                other_radiologist.username,
                json.dumps(details),
                override.id,
            ],
        )
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id = %s", [viewed.id])
    _owner_rewrites_chain(how)
    _enable_triggers()

    outcome = _verify_command()
    assert outcome != "intact"
    assert "BROKEN" in outcome


def test_rewriting_only_the_chain_head_is_detected(radiologist: Any) -> None:
    _radiologists_work(radiologist)
    newest = AuditEvent.objects.order_by("-id")[0]
    _disable_triggers()
    with connection.cursor() as cursor:
        # Hide the newest event: delete it and move the head back onto the one before.
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id = %s", [newest.id])
        cursor.execute("UPDATE diagnosis_auditchainhead SET last_hash = %s, count = count - 1", [newest.prev_hash])
    _enable_triggers()
    outcome = _verify_command()
    assert "BROKEN" in outcome and "head" in outcome


def _owner_with_the_key_truncates_tail(keep: AuditEvent) -> None:
    """The worst case: the owner also stole the key, deletes everything after ``keep`` and re-signs the head."""
    from diagnosis.services.audit_signing import audit_head_mac

    _disable_triggers()
    count = AuditEvent.objects.filter(id__lte=keep.id).count()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM diagnosis_auditevent WHERE id > %s", [keep.id])
        cursor.execute(
            "UPDATE diagnosis_auditchainhead SET last_hash = %s, count = %s, mac = %s",
            [keep.hash, count, audit_head_mac(key_id=keep.key_id, count=count, last_hash=keep.hash)],  # type: ignore[attr-defined]
        )
    _enable_triggers()


def test_deleting_the_newest_events_is_detected_against_the_last_checkpoint(radiologist: Any, tmp_path: Path) -> None:
    _radiologists_work(radiologist)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    call_command("audit_checkpoint", "--file", str(checkpoints), stdout=open("/dev/null", "w"))  # noqa: SIM115
    keep = AuditEvent.objects.order_by("id")[1]

    _owner_with_the_key_truncates_tail(keep)

    # The head was re-signed with the stolen key: the database alone looks consistent ...
    assert _verify_command() == "intact"
    # ... but the checkpoint exported before the deletion still knows how long the chain was.
    outcome = _verify_command("--checkpoints", str(checkpoints))
    assert "BROKEN" in outcome and "checkpoint" in outcome and "missing" in outcome
    # And the next periodic checkpoint refuses to bless the shortened chain.
    with pytest.raises(CommandError, match="REFUSED.*previous checkpoint"):
        call_command("audit_checkpoint", "--file", str(checkpoints), stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_wiping_the_whole_chain_is_detected_against_the_last_checkpoint(radiologist: Any, tmp_path: Path) -> None:
    _radiologists_work(radiologist)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    call_command("audit_checkpoint", "--file", str(checkpoints), stdout=open("/dev/null", "w"))  # noqa: SIM115
    _disable_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM diagnosis_auditevent")
        cursor.execute(
            "UPDATE diagnosis_auditchainhead SET last_hash = %s, count = 0, key_id = '', mac = ''", ["0" * 64]
        )
    _enable_triggers()
    # An empty chain with a fresh head is what a new installation looks like: only the export can tell them apart.
    assert _verify_command() == "intact"
    outcome = _verify_command("--checkpoints", str(checkpoints))
    assert "BROKEN" in outcome and "0 events remain" in outcome


def test_a_forged_checkpoint_is_refused(radiologist: Any, tmp_path: Path) -> None:
    _radiologists_work(radiologist)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    call_command("audit_checkpoint", "--file", str(checkpoints), stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _verify_command("--checkpoints", str(checkpoints)) == "intact"

    # Someone who truncated the chain would also have to shorten the exported checkpoint to match.
    keep = AuditEvent.objects.order_by("id")[1]
    line = json.loads(checkpoints.read_text().splitlines()[-1])
    line.update(count=2, last_event_id=keep.id, last_hash=keep.hash)
    checkpoints.write_text(json.dumps(line) + "\n")
    outcome = _verify_command("--checkpoints", str(checkpoints))
    assert "BROKEN" in outcome and "line 1" in outcome and "signature" in outcome


def test_the_beat_task_appends_a_signed_checkpoint(radiologist: Any, tmp_path: Path) -> None:
    from django.conf import settings

    from diagnosis.tasks.audit import audit_checkpoint_write_task

    assert any(
        entry["task"] == "diagnosis.tasks.audit.audit_checkpoint_write"
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )
    _radiologists_work(radiologist)
    target = tmp_path / "beat" / "checkpoints.jsonl"
    with override_settings(PNEUMO_AUDIT_CHECKPOINT_FILE=target):
        audit_checkpoint_write_task.delay()
        audit_checkpoint_write_task.delay()
    lines = [json.loads(text) for text in target.read_text().splitlines()]
    head = AuditChainHead.objects.get(id=1)
    assert [line["count"] for line in lines] == [head.count, head.count]
    assert lines[-1]["last_hash"] == head.last_hash and lines[-1]["hmac"]
    assert _verify_command("--checkpoints", str(target)) == "intact"


def test_events_under_two_keys_verify_while_both_are_configured(radiologist: Any) -> None:
    with override_settings(PNEUMO_AUDIT_KEYS={"a": KEY_A}, PNEUMO_AUDIT_KEY_ID="a"):
        for n in range(2):
            audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id=f"a{n}", actor=radiologist)
    with override_settings(PNEUMO_AUDIT_KEYS={"a": KEY_A, "b": KEY_B}, PNEUMO_AUDIT_KEY_ID="b"):
        for n in range(2):
            audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id=f"b{n}", actor=radiologist)
        assert list(AuditEvent.objects.order_by("id").values_list("key_id", flat=True)) == ["a", "a", "b", "b"]
        assert audit_chain_verify().ok
        assert _verify_command() == "intact"
    with override_settings(PNEUMO_AUDIT_KEYS={"b": KEY_B}, PNEUMO_AUDIT_KEY_ID="b"):
        result = audit_chain_verify()
        assert not result.ok and "'a'" in result.reason and "not configured" in result.reason
    with override_settings(PNEUMO_AUDIT_KEYS={"a": KEY_A}, PNEUMO_AUDIT_KEY_ID="a"):
        result = audit_chain_verify()  # the head was signed with b, the newest key
        assert not result.ok and "'b'" in result.reason


def test_an_event_signed_with_one_key_does_not_verify_under_another_of_the_same_id(radiologist: Any) -> None:
    with override_settings(PNEUMO_AUDIT_KEYS={"a": KEY_A}, PNEUMO_AUDIT_KEY_ID="a"):
        audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id="x", actor=radiologist)
    with override_settings(PNEUMO_AUDIT_KEYS={"a": KEY_B}, PNEUMO_AUDIT_KEY_ID="a"):
        assert not audit_chain_verify().ok
