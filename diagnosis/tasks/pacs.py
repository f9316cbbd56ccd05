"""PACS tasks (queue ``pacs``): release a received DICOM study for screening once its stability window has passed.

The results half of the PACS peer (SR / Secondary Capture creation and sending) lives in
:mod:`diagnosis.tasks.pacs_results`.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from diagnosis.services import dispatch
from diagnosis.services.pacs_release import dicom_studies_release_due, dicom_study_release
from diagnosis.tasks.options import RETRY_ON_TRANSIENT_ERRORS, logging_task_id


@shared_task(**RETRY_ON_TRANSIENT_ERRORS, name=dispatch.DICOM_STUDY_RELEASE)
def dicom_study_release_task(self: Any, dicom_study_id: str) -> int:
    """Release one DICOM study, or ask again when its window ends (an instance arrived since this was queued)."""
    with logging_task_id(self):
        result = dicom_study_release(dicom_study_id=dicom_study_id)
    if result.retry_in > 0 and not self.request.is_eager:
        # Eager runs (unit tests) would recurse at once; the beat safety net covers them anyway.
        dispatch.enqueue_later_on_commit(dispatch.DICOM_STUDY_RELEASE, dicom_study_id, countdown=result.retry_in)
    return result.released


@shared_task(name=dispatch.DICOM_STUDIES_RELEASE_DUE, acks_late=False)
def dicom_studies_release_due_task() -> int:
    """Beat safety net: release quiet studies whose release message was lost (broker down, worker restarted)."""
    return dicom_studies_release_due()
