"""A radiologist confirms or overrides the model's finding, and amends a standing review explicitly.

Clinical safety (issue 10): a study has one standing review, the latest. A second POST that would silently replace
it (a stale page, a double click on "Confirm AI finding") is refused; changing the finding is an explicit amendment
(``amend=True``) with a reason, audited as ``study.review_amended``. Every review row is kept as the history.

Rules enforced here, so the API and the dashboard refuse alike:

- A finding that differs from the AI's label (an override, including "Other abnormality" and "Non-diagnostic
  image" against a Normal/Pneumonia prediction) needs a reason in the comment: 400.
- A second review without ``amend``: 409. ``amend`` on a study with no review yet: 409. An amendment without a
  reason: 400.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest

from diagnosis.exceptions import InvalidInputError, StudyStateError
from diagnosis.models import AuditAction, Prediction, Review, Study
from diagnosis.selectors.studies import study_primary_prediction
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record

#: The findings that make a pneumonia call; the others are neither agreement nor disagreement with the model.
PNEUMONIA_CALLS = frozenset({Review.Finding.NORMAL.value, Review.Finding.PNEUMONIA.value})

OVERRIDE_REASON_REQUIRED = "A reason is required to override the AI finding ({ai} → {finding}): say why in the comment."
AMEND_REASON_REQUIRED = "A reason is required to amend a review: say why in the comment."


def review_agrees_with_model(*, finding: str, prediction: Prediction | None) -> bool | None:
    """True/False when both the model and the radiologist made a pneumonia call; None otherwise.

    "Other abnormality" and "Non-diagnostic image" say nothing about pneumonia, so they neither agree nor disagree:
    None keeps them out of agreement, sensitivity and specificity (they are counted separately).
    """
    if prediction is None or finding not in PNEUMONIA_CALLS:
        return None
    return prediction.label == finding


def _label(finding: str) -> str:
    return str(Review.Finding(finding).label) if finding in Review.Finding.values else finding


def _check_review(
    *, study: Study, finding: str, comment: str, amend: bool, standing: Review | None, prediction: Prediction | None
) -> None:
    """Raise the domain error that refuses this review, if any (see the module docstring)."""
    if study.status != Study.Status.COMPLETED:
        raise StudyStateError(f"Study {study.id} is {study.status}; only completed studies can be reviewed.")
    if standing is not None and not amend:
        who = standing.reviewer.get_full_name() or standing.reviewer.get_username()
        raise StudyStateError(
            f"Study {study.id} already has a review ({_label(standing.finding)} by {who} at "
            f"{standing.created_at:%Y-%m-%d %H:%M} UTC). To change it, amend the review and give a reason.",
            extra={"standing_review_id": standing.id, "standing_finding": standing.finding},
        )
    if standing is None and amend:
        raise StudyStateError(f"Study {study.id} has no review to amend; record a review instead.")
    if prediction is not None and finding != prediction.label and not comment:
        raise InvalidInputError(
            OVERRIDE_REASON_REQUIRED.format(ai=_label(prediction.label), finding=_label(finding)),
            extra={"field": "comment"},
        )
    if amend and not comment:
        raise InvalidInputError(AMEND_REASON_REQUIRED, extra={"field": "comment"})


def _audit_action(*, amend: bool, overrides: bool) -> AuditAction:
    if amend:
        return AuditAction.STUDY_REVIEW_AMENDED
    return AuditAction.STUDY_OVERRIDDEN if overrides else AuditAction.STUDY_REVIEWED


@transaction.atomic
def review_create(
    *,
    study: Study,
    reviewer: User,
    finding: str,
    comment: str = "",
    amend: bool = False,
    request: HttpRequest | None = None,
) -> Review:
    """Record the first review of a study, or (``amend=True``) amend its standing review. Audited.

    The caller checks the reviewer is a radiologist. Raises ``InvalidInputError`` (400) for an unknown finding or a
    missing reason, ``StudyStateError`` (409) for a study not completed, a second review without ``amend``, or an
    amendment with nothing to amend.
    """
    if finding not in Review.Finding.values:
        raise InvalidInputError(f"finding must be one of {', '.join(Review.Finding.values)}. Received: {finding!r}")
    comment = comment.strip()[:5000]
    # The lock serialises two radiologists reviewing the same study: the second sees the first's review and is
    # refused instead of silently replacing it.
    study = Study.objects.select_for_update().get(pk=study.pk)
    standing = study.reviews.select_related("reviewer").order_by("-created_at", "-id").first()
    prediction = study_primary_prediction(study)
    _check_review(study=study, finding=finding, comment=comment, amend=amend, standing=standing, prediction=prediction)
    agrees = review_agrees_with_model(finding=finding, prediction=prediction)
    overrides = prediction is not None and finding != prediction.label
    review = Review.objects.create(
        study=study,
        prediction=prediction,
        reviewer=reviewer,
        finding=finding,
        agrees_with_model=agrees,
        comment=comment,
    )
    details: dict[str, object] = {
        "finding": finding,
        "model_label": prediction.label if prediction else None,
        "probability": prediction.probability if prediction else None,
        "model_version": prediction.model_version.version if prediction else None,
        "agrees_with_model": agrees,
        "overrides_model": overrides,
        "comment": review.comment,
        "review_id": review.id,
    }
    if amend and standing is not None:
        details.update(
            {
                "previous_review_id": standing.id,
                "previous_finding": standing.finding,
                "previous_reviewer": standing.reviewer.get_username(),
                "previous_comment": standing.comment,
            }
        )
    audit_record(
        action=_audit_action(amend=amend, overrides=overrides),
        subject_type="study",
        subject_id=str(study.id),
        actor=reviewer,
        request=request,
        details=details,
    )
    if study.format == Study.Format.DICOM:
        # The radiologist's verified SR goes back to the PACS too (services/pacs_results.py, `pacs` queue); an
        # amendment sends a new verified SR, as a PACS expects for a changed report.
        dispatch.enqueue_on_commit(dispatch.REVIEW_RESULT_CREATE, review.id)
    return review
