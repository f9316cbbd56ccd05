"""Append to and verify the hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis.log_context import request_id_var, task_id_var
from diagnosis.models import AuditAction, AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


def _canonical(event: AuditEvent) -> str:
    content = {
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "client_ip": event.client_ip,
        "request_id": event.request_id,
        "task_id": event.task_id,
        "details": event.details,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def audit_event_hash(event: AuditEvent, prev_hash: str) -> str:
    return hashlib.sha256((prev_hash + _canonical(event)).encode("utf-8")).hexdigest()


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
    )
    event.hash = audit_event_hash(event, head.last_hash)
    event.save(force_insert=True)
    AuditChainHead.objects.filter(id=1).update(last_hash=event.hash, count=head.count + 1)
    return event


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def audit_chain_verify() -> ChainVerification:
    """Recompute every hash in order; report the first event whose content or link does not match."""
    prev_hash = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev_hash:
            return ChainVerification(False, checked, event.id, "link to the previous event is broken (row removed?)")
        if audit_event_hash(event, prev_hash) != event.hash:
            return ChainVerification(False, checked, event.id, "content does not match its hash (row altered?)")
        prev_hash = event.hash
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and (head.last_hash != prev_hash or head.count != checked):
        return ChainVerification(False, checked, None, "the newest events are missing (chain head does not match)")
    return ChainVerification(True, checked)
