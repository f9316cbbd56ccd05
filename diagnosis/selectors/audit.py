"""Reads of the audit log for the pages that show a record's history."""

from __future__ import annotations

from django.db.models import Q

from diagnosis.models import AuditEvent


def audit_trail(*, subject_type: str, subject_id: str, limit: int = 20) -> list[AuditEvent]:
    """The newest events about one subject; for a model version, also the traffic changes that name it."""
    events = Q(subject_type=subject_type, subject_id=subject_id)
    if subject_type == "model_version":  # traffic changes are one event for all versions: show those naming it
        events |= Q(subject_type="model_traffic") & (
            Q(details__new__has_key=subject_id) | Q(details__old__has_key=subject_id)
        )
    return list(AuditEvent.objects.filter(events).order_by("-id")[:limit])
