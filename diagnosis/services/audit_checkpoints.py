"""Signed checkpoints of the audit chain head, exported outside the database.

The head and every event are signed, but whoever holds both the database and the key could still delete the newest
events and re-sign a shorter head. A checkpoint is a copy of the head taken periodically (Celery beat, or
``manage.py audit_checkpoint``) and appended as one JSON line to a file outside the database
(``PNEUMO_AUDIT_CHECKPOINT_FILE``; ship it to append-only or off-host storage) and to the log:

    {"count": 1234, "last_event_id": 1240, "last_hash": "…", "time": "…", "key_id": "2026-11", "hmac": "…"}

``verify_audit_chain --checkpoints FILE`` then requires that the chain still holds, at the position each
checkpoint names, the event and hash it recorded: a truncated tail or a rewritten past is found even when the
database looks consistent on its own.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from diagnosis.models import AuditChainHead, AuditEvent
from diagnosis.services.audit_signing import (
    GENESIS_HASH,
    UnknownAuditKeyError,
    audit_head_mac,
    checkpoint_mac,
    current_key_id,
    macs_equal,
)

logger = logging.getLogger(__name__)

SIGNED_FIELDS = ("count", "last_event_id", "last_hash", "time", "key_id")
# The newest checkpoint is found by reading the end of the file only; one line is about 250 bytes.
TAIL_BYTES = 64 * 1024


class CheckpointError(Exception):
    """A checkpoint file that cannot be trusted, or a chain that no longer matches the newest checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    count: int
    last_event_id: int | None
    last_hash: str
    time: str
    key_id: str
    hmac: str
    line: int = 0

    def signed_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SIGNED_FIELDS}

    def describe(self) -> str:
        return f"checkpoint of {self.time} (line {self.line}: {self.count} events, last event {self.last_event_id})"


def _parse(text: str, line: int) -> Checkpoint:
    """Parse and authenticate one line. Raises ``CheckpointError`` naming the line."""
    try:
        raw = json.loads(text)
        checkpoint = Checkpoint(
            count=int(raw["count"]),
            last_event_id=None if raw["last_event_id"] is None else int(raw["last_event_id"]),
            last_hash=str(raw["last_hash"]),
            time=str(raw["time"]),
            key_id=str(raw["key_id"]),
            hmac=str(raw["hmac"]),
            line=line,
        )
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"line {line} is not a checkpoint ({type(error).__name__}: {error})") from None
    try:
        expected = checkpoint_mac(key_id=checkpoint.key_id, fields=checkpoint.signed_fields())
    except UnknownAuditKeyError as error:
        raise CheckpointError(f"line {line} is signed with {error}") from None
    if not macs_equal(expected, checkpoint.hmac):
        raise CheckpointError(f"line {line} has an invalid signature (forged or altered checkpoint)")
    return checkpoint


def checkpoints_read(path: Path) -> list[Checkpoint]:
    """Every checkpoint in ``path``, each authenticated. Raises ``CheckpointError`` on any bad line."""
    try:
        with path.open(encoding="utf-8") as lines:
            return [_parse(text, number) for number, text in enumerate(lines, start=1) if text.strip()]
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None


def _newest_checkpoint(path: Path) -> Checkpoint | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - TAIL_BYTES))
        tail = handle.read().decode("utf-8", errors="replace").splitlines()
    complete = tail[1:] if size > TAIL_BYTES else tail  # the first line of a partial read may be cut
    texts = [text for text in complete if text.strip()]
    return _parse(texts[-1], line=0) if texts else None


def _check_head(head: AuditChainHead, newest: AuditEvent | None) -> None:
    if newest is None:
        if head.count != 0 or head.last_hash != GENESIS_HASH:
            raise CheckpointError("the chain head counts events, but there are none (chain truncated?)")
        return
    if newest.hash != head.last_hash:
        raise CheckpointError(f"the chain head does not point at the newest event {newest.id} (head rewritten?)")
    if not head.key_id:
        raise CheckpointError("the chain head is not signed (rewritten without the key?)")
    try:
        expected = audit_head_mac(key_id=head.key_id, count=head.count, last_hash=head.last_hash)
    except UnknownAuditKeyError as error:
        raise CheckpointError(f"the chain head is signed with {error}") from None
    if not macs_equal(expected, head.mac):
        raise CheckpointError("the chain head's signature is invalid (head rewritten?)")


def _check_still_covers(previous: Checkpoint, head: AuditChainHead) -> None:
    if previous.count == 0 or previous.last_event_id is None:
        return
    kept = AuditEvent.objects.filter(id=previous.last_event_id).values_list("hash", flat=True).first()
    if head.count < previous.count or kept != previous.last_hash:
        raise CheckpointError(
            f"the chain no longer holds what the previous checkpoint of {previous.time} recorded "
            f"({previous.count} events up to event {previous.last_event_id}; now {head.count}): events removed?"
        )


def _append_line(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (text + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def audit_checkpoint_write(*, path: Path) -> Checkpoint:
    """Sign the current chain head and append it to ``path`` (and to the log).

    Refuses, with ``CheckpointError``, to sign a head that does not match the newest event or its own signature,
    or a chain shorter than, or different from, what the previous checkpoint in ``path`` recorded: a checkpoint
    must never bless a chain that was cut back.
    """
    previous = _newest_checkpoint(path)
    with transaction.atomic():
        # Holding the head's lock, no append can land between reading the head and reading the newest event.
        head = AuditChainHead.objects.select_for_update().get(id=1)
        newest = AuditEvent.objects.order_by("-id").first()
        _check_head(head, newest)
        if previous is not None:
            _check_still_covers(previous, head)
    key_id = current_key_id()
    fields: dict[str, Any] = {
        "count": head.count,
        "last_event_id": newest.id if newest is not None else None,
        "last_hash": head.last_hash,
        "time": timezone.now().isoformat(),
        "key_id": key_id,
    }
    checkpoint = Checkpoint(**fields, hmac=checkpoint_mac(key_id=key_id, fields=fields))
    record = asdict(checkpoint)
    del record["line"]
    text = json.dumps(record, sort_keys=True)
    _append_line(path, text)
    # The same line in the log: a second copy outside the database, wherever the logs are shipped.
    logger.info("audit chain checkpoint %s", text)
    return checkpoint
