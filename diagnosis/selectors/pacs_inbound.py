"""Reads for the inbound half of the PACS peer: who may send us studies, and which received studies are due."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from diagnosis.models import DicomNode, DicomStudy


def dicom_node_senders() -> QuerySet[DicomNode]:
    """Enabled nodes allowed to send studies (their AE titles are the listener's calling-AE allow-list)."""
    return DicomNode.objects.filter(enabled=True, sends_studies=True).exclude(ae_title="")


def dicom_node_sender_for_ae_title(ae_title: str) -> DicomNode | None:
    """The enabled sending node with this AE title (compared without padding), or ``None``: not on the allow-list."""
    ae_title = ae_title.strip()
    if not ae_title:
        return None
    return dicom_node_senders().filter(ae_title=ae_title).order_by("id").first()


def dicom_studies_due(*, received_before: datetime) -> list[str]:
    """Ids of DICOM studies with instances not yet screened whose last instance arrived before ``received_before``."""
    ids = (
        DicomStudy.objects.filter(last_received_at__lte=received_before, instances__study__isnull=True)
        .values_list("id", flat=True)
        .distinct()
    )
    return [str(value) for value in ids]
