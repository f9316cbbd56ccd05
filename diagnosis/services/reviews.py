"""A radiologist confirms or overrides the model's finding."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest

from diagnosis.exceptions import InvalidInputError, StudyStateError
from diagnosis.models import AuditAction, Review, Study
from diagnosis.selectors.studies import study_primary_prediction
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record


@transaction.atomic
def review_create(
    *, study: Study, reviewer: User, finding: str, comment: str = "", request: HttpRequest | None = None
) -> Review:
    """Record a review. The caller checks the reviewer is a radiologist. The latest review stands."""
    if finding not in Review.Finding.values:
        raise InvalidInputError(f"finding must be one of {', '.join(Review.Finding.values)}. Received: {finding!r}")
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status != Study.Status.COMPLETED:
        raise StudyStateError(f"Study {study.id} is {study.status}; only completed studies can be reviewed.")
    prediction = study_primary_prediction(study)
    agrees = None if prediction is None else prediction.label == finding
    review = Review.objects.create(
        study=study,
        prediction=prediction,
        reviewer=reviewer,
        finding=finding,
        agrees_with_model=agrees,
        comment=comment.strip()[:5000],
    )
    audit_record(
        action=AuditAction.STUDY_REVIEWED if agrees is not False else AuditAction.STUDY_OVERRIDDEN,
        subject_type="study",
        subject_id=str(study.id),
        actor=reviewer,
        request=request,
        details={
            "finding": finding,
            "model_label": prediction.label if prediction else None,
            "probability": prediction.probability if prediction else None,
            "model_version": prediction.model_version.version if prediction else None,
            "agrees_with_model": agrees,
            "comment": review.comment,
            "review_id": review.id,
        },
    )
    if study.format == Study.Format.DICOM:
        # The radiologist's verified SR goes back to the PACS too (services/pacs_results.py, `pacs` queue).
        dispatch.enqueue_on_commit(dispatch.REVIEW_RESULT_CREATE, review.id)
    return review
