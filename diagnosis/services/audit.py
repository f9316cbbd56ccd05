"""Append to and verify the audit log: a chain of events, each signed with a key held outside the database.

What each protection stops (issue 8): the append-only trigger and the app role's missing UPDATE/DELETE/TRUNCATE
privileges (``setup_db_roles``) stop the application's own credentials; the HMAC keys (``audit_signing``) make any
rewrite by someone without the key visible, the chain head included; exported checkpoints
(``audit_checkpoints``) reveal a tail cut off by someone who also holds the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis.log_context import request_id_var, task_id_var
from diagnosis.models import AuditAction, AuditChainHead, AuditEvent
from diagnosis.services.audit_checkpoints import Checkpoint, CheckpointError, checkpoints_read
from diagnosis.services.audit_signing import (
    GENESIS_HASH,
    UnknownAuditKeyError,
    audit_event_hash,
    audit_head_mac,
    current_key_id,
    macs_equal,
)

__all__ = [
    "GENESIS_HASH",
    "ChainVerification",
    "audit_chain_verify",
    "audit_event_hash",
    "audit_record",
    "client_ip_from_request",
]


def client_ip_from_request(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") or None


@transaction.atomic
def audit_record(
    *,
    action: AuditAction,
    subject_type: str,
    subject_id: str,
    actor: User | AnonymousUser | None = None,
    request: HttpRequest | None = None,
    task_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction of the change it records."""
    user = actor if actor is not None and actor.is_authenticated else None
    key_id = current_key_id()
    # The chain head row is locked so concurrent appends form one chain, not a fork.
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(
        id=1, defaults={"last_hash": GENESIS_HASH, "count": 0}
    )
    event = AuditEvent(
        created_at=timezone.now(),
        actor=user,
        actor_name=user.get_username() if user is not None else "system",
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        client_ip=client_ip_from_request(request),
        request_id=getattr(request, "request_id", "") or request_id_var.get(),
        task_id=task_id or task_id_var.get(),
        # Round-trip through JSON so the hash is computed over exactly what the database will return.
        details=json.loads(json.dumps(details or {}, default=str)),
        prev_hash=head.last_hash,
        key_id=key_id,
    )
    event.hash = audit_event_hash(event, head.last_hash)
    event.save(force_insert=True)
    # On PostgreSQL a trigger lets the head move only this way: one step, onto the event just appended.
    count = head.count + 1
    AuditChainHead.objects.filter(id=1).update(
        last_hash=event.hash,
        count=count,
        key_id=key_id,
        mac=audit_head_mac(key_id=key_id, count=count, last_hash=event.hash),
    )
    return event


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def _event_problem(event: AuditEvent, prev_hash: str, seen_keyed: bool) -> str:
    if event.prev_hash != prev_hash:
        return "link to the previous event is broken (row removed?)"
    if not event.key_id and seen_keyed:
        # Legacy (unkeyed) rows only ever precede the first keyed one: a plain sha256 row after it is a forgery.
        return "unkeyed event after keyed ones (rewritten without the key?)"
    try:
        expected = audit_event_hash(event, prev_hash)
    except UnknownAuditKeyError as error:
        return f"signed with {error}"
    if not macs_equal(expected, event.hash):
        return "content does not match its hash (row altered?)"
    return ""


def _head_problem(head: AuditChainHead | None, last_hash: str, checked: int) -> str:
    if head is None:
        return "the chain head row is missing" if checked else ""
    if head.last_hash != last_hash or head.count != checked:
        return (
            f"the chain head does not match the events (head: {head.count} events; found {checked}): "
            "the newest events are missing or the head was rewritten"
        )
    if not head.key_id:
        # Only a fresh, empty chain has an unsigned head: the first append signs it, and so did the upgrade.
        return "" if checked == 0 else "the chain head is not signed (rewritten without the key?)"
    try:
        expected = audit_head_mac(key_id=head.key_id, count=head.count, last_hash=head.last_hash)
    except UnknownAuditKeyError as error:
        return f"the chain head is signed with {error}"
    if not macs_equal(expected, head.mac):
        return "the chain head's signature is invalid (head rewritten?)"
    return ""


def _checkpoint_problem(checkpoint: Checkpoint, event: AuditEvent, position: int) -> str:
    if checkpoint.count != position or checkpoint.last_hash != event.hash:
        return (
            f"event {event.id} is number {position} in the chain, not as the {checkpoint.describe()} "
            "recorded it (events removed or rewritten before it?)"
        )
    return ""


def _walk(checkpoints: Iterable[Checkpoint]) -> ChainVerification:
    pending = {cp.last_event_id: cp for cp in checkpoints if cp.count > 0 and cp.last_event_id is not None}
    prev_hash, checked, seen_keyed = GENESIS_HASH, 0, False
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        problem = _event_problem(event, prev_hash, seen_keyed)
        checkpoint = pending.pop(event.id, None)
        if not problem and checkpoint is not None:
            problem = _checkpoint_problem(checkpoint, event, checked + 1)
        if problem:
            return ChainVerification(False, checked, event.id, problem)
        prev_hash, checked, seen_keyed = event.hash, checked + 1, seen_keyed or bool(event.key_id)
    if pending:
        longest = max(pending.values(), key=lambda cp: cp.count)
        return ChainVerification(
            False,
            checked,
            None,
            f"{longest.describe()}: its last event is missing, {checked} events remain "
            "(the newest events were deleted and the head rewound?)",
        )
    problem = _head_problem(AuditChainHead.objects.filter(id=1).first(), prev_hash, checked)
    return ChainVerification(not problem, checked, None, problem)


def audit_chain_verify(*, checkpoint_file: Path | None = None) -> ChainVerification:
    """Recompute every link in order; report the first event, head or checkpoint that does not match.

    With ``checkpoint_file``, every signed checkpoint in it must still be found in the chain, at the position
    and with the hash it recorded; a forged or unreadable checkpoint fails the verification too.
    """
    checkpoints: list[Checkpoint] = []
    if checkpoint_file is not None:
        try:
            checkpoints = checkpoints_read(checkpoint_file)
        except CheckpointError as error:
            return ChainVerification(False, 0, None, f"checkpoint file {checkpoint_file}: {error}")
    return _walk(checkpoints)
