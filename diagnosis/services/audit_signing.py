"""The keys and MACs that make the audit chain tamper-evident for anyone who controls the database but not the key.

Keys live outside the database (``PNEUMO_AUDIT_KEYS``: key id -> secret, from the environment or a ``*_FILE``
secret); ``PNEUMO_AUDIT_KEY_ID`` names the one new events are signed with. Every event stores the id of its key, so
a key can be rotated: add the new key, point ``PNEUMO_AUDIT_KEY_ID`` at it, and keep the old one configured for as
long as events signed with it must verify.

Three things are signed, each with its own prefix so a MAC of one can never pass for another:
- an event: HMAC-SHA256(key, previous hash + canonical content, key id included). Events written before the chain
  was keyed have ``key_id == ""`` and keep their plain sha256 hash (see ``audit_chain_verify`` for where they are
  accepted);
- the chain head: HMAC over its event count and last hash;
- an exported checkpoint: HMAC over its canonical JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings

from diagnosis.models import AuditEvent

GENESIS_HASH = "0" * 64
HEAD_PREFIX = "pneumoweb-audit-head\n"
CHECKPOINT_PREFIX = "pneumoweb-audit-checkpoint\n"


class UnknownAuditKeyError(LookupError):
    """A signature names a key id that ``PNEUMO_AUDIT_KEYS`` does not hold (removed too early, or forged)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"key id {key_id!r}, which is not configured (PNEUMO_AUDIT_KEYS)")
        self.key_id = key_id


def current_key_id() -> str:
    """The key id new events and checkpoints are signed with; it must be one of the configured keys."""
    key_id = str(settings.PNEUMO_AUDIT_KEY_ID)
    _secret(key_id)
    return key_id


def _secret(key_id: str) -> bytes:
    keys: dict[str, str] = settings.PNEUMO_AUDIT_KEYS
    if not key_id or key_id not in keys:
        raise UnknownAuditKeyError(key_id)
    return keys[key_id].encode("utf-8")


def _mac(key_id: str, message: str) -> str:
    return hmac.new(_secret(key_id), message.encode("utf-8"), hashlib.sha256).hexdigest()


def macs_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("ascii", "replace"), right.encode("ascii", "replace"))


def _canonical(event: AuditEvent) -> str:
    content: dict[str, Any] = {
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
    if event.key_id:
        # Keyed events sign their key id too, so a row cannot be moved under another key (legacy rows never had it).
        content["key_id"] = event.key_id
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def audit_event_hash(event: AuditEvent, prev_hash: str) -> str:
    """The event's link in the chain: HMAC with its key, or plain sha256 for a legacy (unkeyed) row.

    Raises:
        UnknownAuditKeyError: the event names a key that is not configured.
    """
    message = prev_hash + _canonical(event)
    if not event.key_id:
        return hashlib.sha256(message.encode("utf-8")).hexdigest()
    return _mac(event.key_id, message)


def audit_head_mac(*, key_id: str, count: int, last_hash: str) -> str:
    return _mac(key_id, f"{HEAD_PREFIX}{count}:{last_hash}")


def checkpoint_mac(*, key_id: str, fields: dict[str, Any]) -> str:
    return _mac(key_id, CHECKPOINT_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":")))
