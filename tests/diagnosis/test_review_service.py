"""services.reviews.review_create: reasons for overrides, explicit amendments, no silent second review (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis.exceptions import InvalidInputError, StudyStateError
from diagnosis.models import AuditEvent, ModelVersion, Review, Study
from diagnosis.services.reviews import review_create
from tests.factories import PredictionFactory, RadiologistFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ai_positive(serving_model_version: ModelVersion) -> Study:
    """A completed study the AI called PNEUMONIA."""
    return PredictionFactory(probability=0.9).study


def actions(study: Study) -> list[str]:
    return list(
        AuditEvent.objects.filter(subject_type="study", subject_id=str(study.id))
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.mark.parametrize("comment", ["", "   \n "])
def test_an_override_without_a_reason_is_refused_and_nothing_is_written(
    ai_positive: Study, radiologist: Any, comment: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment=comment)

    assert refused.value.status_code == 400
    assert refused.value.message == (
        "A reason is required to override the AI finding (Pneumonia → Normal): say why in the comment."
    )
    assert not Review.objects.exists()
    assert actions(ai_positive) == []


def test_confirming_the_ai_finding_needs_no_reason(ai_positive: Study, radiologist: Any) -> None:
    review = review_create(study=ai_positive, reviewer=radiologist, finding="PNEUMONIA")
    assert (review.agrees_with_model, review.comment) == (True, "")
    assert actions(ai_positive) == ["study.reviewed"]


def test_an_override_with_a_reason_is_recorded_and_audited_as_an_override(ai_positive: Study, radiologist: Any) -> None:
    review = review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment=" Thymus. ")
    assert (review.finding, review.agrees_with_model, review.comment) == ("NORMAL", False, "Thymus.")
    event = AuditEvent.objects.get(action="study.overridden")
    assert event.details["overrides_model"] is True and event.details["review_id"] == review.id


def test_a_second_review_without_the_amend_intent_is_refused(ai_positive: Study, radiologist: Any) -> None:
    first = review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment="Thymus.")
    other = RadiologistFactory(username="dr-other")

    # The one-click "Confirm AI finding" of a stale page: it must not replace the override.
    with pytest.raises(StudyStateError) as refused:
        review_create(study=ai_positive, reviewer=other, finding="PNEUMONIA")

    assert refused.value.status_code == 409
    assert "already has a review (Normal by" in refused.value.message
    assert "amend the review and give a reason" in refused.value.message
    assert refused.value.extra == {"standing_review_id": first.id, "standing_finding": "NORMAL"}
    assert list(Review.objects.values_list("id", flat=True)) == [first.id]
    assert actions(ai_positive) == ["study.overridden"]


def test_an_amendment_needs_a_reason(ai_positive: Study, radiologist: Any) -> None:
    review_create(study=ai_positive, reviewer=radiologist, finding="PNEUMONIA")
    with pytest.raises(InvalidInputError, match="A reason is required to amend a review"):
        review_create(study=ai_positive, reviewer=radiologist, finding="PNEUMONIA", amend=True)
    assert Review.objects.count() == 1


def test_amending_a_study_without_a_review_is_refused(ai_positive: Study, radiologist: Any) -> None:
    with pytest.raises(StudyStateError, match="has no review to amend"):
        review_create(study=ai_positive, reviewer=radiologist, finding="PNEUMONIA", comment="x", amend=True)
    assert not Review.objects.exists()


def test_an_amendment_keeps_the_history_and_is_audited_with_the_previous_review(
    ai_positive: Study, radiologist: Any
) -> None:
    first = review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment="Thymus.")
    other = RadiologistFactory(username="dr-amender")

    amended = review_create(
        study=ai_positive, reviewer=other, finding="PNEUMONIA", comment="RLL opacity on the lateral.", amend=True
    )

    history = list(ai_positive.reviews.order_by("-created_at", "-id"))
    assert history == [amended, first]  # every review row stays; the newest stands
    assert (amended.finding, amended.agrees_with_model) == ("PNEUMONIA", True)
    assert actions(ai_positive) == ["study.overridden", "study.review_amended"]
    event = AuditEvent.objects.get(action="study.review_amended")
    assert event.actor == other
    assert event.details["previous_review_id"] == first.id
    assert (event.details["previous_finding"], event.details["finding"]) == ("NORMAL", "PNEUMONIA")
    assert event.details["comment"] == "RLL opacity on the lateral."


@pytest.mark.parametrize("finding", ["OTHER_ABNORMALITY", "NON_DIAGNOSTIC"])
def test_findings_without_a_pneumonia_call_neither_agree_nor_disagree_and_need_a_reason(
    ai_positive: Study, radiologist: Any, finding: str
) -> None:
    with pytest.raises(InvalidInputError, match="A reason is required to override"):
        review_create(study=ai_positive, reviewer=radiologist, finding=finding)

    review = review_create(study=ai_positive, reviewer=radiologist, finding=finding, comment="Rotated, cut off.")

    assert review.agrees_with_model is None
    event = AuditEvent.objects.get(subject_id=str(ai_positive.id))
    assert event.action == "study.overridden"  # it departs from the AI's call
    assert event.details["agrees_with_model"] is None


def test_a_study_without_a_prediction_is_reviewed_without_a_reason(
    serving_model_version: ModelVersion, radiologist: Any
) -> None:
    study = StudyFactory(completed=True)
    review = review_create(study=study, reviewer=radiologist, finding="NON_DIAGNOSTIC")
    assert (review.prediction, review.agrees_with_model) == (None, None)
    assert actions(study) == ["study.reviewed"]
