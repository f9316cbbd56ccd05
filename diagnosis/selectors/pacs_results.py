"""Reads for the results sent back to the PACS: destinations, and what was sent where and when for a study."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from diagnosis.models import DicomNode, ResultSend, Study


def dicom_nodes_list() -> QuerySet[DicomNode]:
    return DicomNode.objects.order_by("name")


def dicom_nodes_receiving_results() -> QuerySet[DicomNode]:
    """Enabled nodes that take our SR and Grad-CAM image."""
    return DicomNode.objects.filter(enabled=True, receives_results=True).order_by("name")


@dataclass(frozen=True)
class ResultSendRow:
    kind: str
    destination: str
    status: str
    status_display: str
    attempts: int
    sent_at: datetime | None
    error: str
    updated_at: datetime


@dataclass(frozen=True)
class StudyResultSends:
    """What the study page shows: whether results can go to a PACS at all, and every send so far."""

    applicable: bool
    rows: list[ResultSendRow]


def study_result_sends(study: Study) -> StudyResultSends:
    """Every send of the study's result objects, oldest object first. Only DICOM originals have a PACS study."""
    sends = (
        ResultSend.objects.filter(result__study=study)
        .select_related("result")
        .order_by("result__created_at", "node_name", "created_at")
    )
    rows = [
        ResultSendRow(
            kind=send.result.get_kind_display(),
            destination=send.node_name,
            status=send.status,
            status_display=send.get_status_display(),
            attempts=send.attempts,
            sent_at=send.sent_at,
            error=send.error,
            updated_at=send.updated_at,
        )
        for send in sends
    ]
    return StudyResultSends(applicable=study.format == Study.Format.DICOM, rows=rows)
