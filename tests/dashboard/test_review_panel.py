"""The study page's review panel (issue 10): standing review, explicit amendment, history, save and next."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import AuditEvent, ModelVersion, Review, Study
from diagnosis.selectors.reviews import study_next_unreviewed
from diagnosis.services.reviews import review_create
from tests.factories import PredictionFactory, RadiologistFactory, ReviewFactory, StudyFactory

pytestmark = pytest.mark.django_db


def study_url(study: Study) -> str:
    return reverse("dashboard:study", kwargs={"study_id": study.id})


def review_url(study: Study) -> str:
    return reverse("dashboard:study_review", kwargs={"study_id": study.id})


@pytest.fixture
def ai_positive(serving_model_version: ModelVersion) -> Study:
    return PredictionFactory(probability=0.9).study


def checked_findings(html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="finding" value="(\w+)"[^>]*\bchecked\b', html)


def test_the_first_review_form_follows_the_keyboard_contract(radiologist_web: Client, ai_positive: Study) -> None:
    html = radiologist_web.get(study_url(ai_positive)).content.decode()
    assert 'id="review-form"' in html and 'id="review-comment"' in html
    for finding in ("NORMAL", "PNEUMONIA", "OTHER_ABNORMALITY", "NON_DIAGNOSTIC"):
        assert f'data-finding="{finding}"' in html
    assert 'data-action="save"' in html and 'data-action="save-next"' in html
    assert 'data-action="amend"' not in html  # nothing to amend yet
    assert checked_findings(html) == ["PNEUMONIA"]  # a first review starts from the AI's finding


def test_after_an_override_the_page_shows_the_standing_review_and_no_one_click_confirm(
    radiologist_web: Client, ai_positive: Study, radiologist: Any
) -> None:
    radiologist.first_name, radiologist.last_name = "Rita", "Ray"
    radiologist.save()
    response = radiologist_web.post(
        review_url(ai_positive), {"finding": "NORMAL", "comment": "Thymus, not consolidation.", "then": "save"}
    )
    assert response.status_code == 302

    html = radiologist_web.get(response["Location"]).content.decode()  # the reload

    review = Review.objects.get()
    standing = re.search(r'<div class="standing-review[^"]*" id="standing-review".*?</div>', html, re.S)
    assert standing is not None
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", standing.group(0)))
    local = timezone.localtime(review.created_at)
    assert f"Normal — overridden (AI: Pneumonia) by Rita Ray at {local:%H:%M}" in text
    assert "Reason: Thymus, not consolidation." in text
    # No pre-selected AI finding, no "Confirm AI finding": the form is hidden behind the explicit Amend step.
    assert checked_findings(html) == []
    assert "Confirm AI finding" not in html
    assert re.search(r'<form[^>]*id="review-form"[^>]*\shidden', html)
    assert 'data-action="amend"' in html and 'href="?amend=1#review-form"' in html
    assert 'name="amend" value="1"' in html


def test_the_amend_step_opens_the_form_with_no_finding_chosen_and_a_required_reason(
    radiologist_web: Client, ai_positive: Study, radiologist: Any
) -> None:
    review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment="Thymus.")
    html = radiologist_web.get(study_url(ai_positive), {"amend": "1"}).content.decode()
    assert not re.search(r'<form[^>]*id="review-form"[^>]*\shidden', html)
    assert checked_findings(html) == []
    assert re.search(r'<textarea name="comment" id="review-comment"[^>]*\srequired', html)
    assert "Save amendment" in html


def test_a_dashboard_post_without_the_amend_intent_cannot_replace_a_standing_review(
    radiologist_web: Client, ai_positive: Study, radiologist: Any
) -> None:
    first = review_create(study=ai_positive, reviewer=radiologist, finding="NORMAL", comment="Thymus.")
    response = radiologist_web.post(review_url(ai_positive), {"finding": "PNEUMONIA"})
    assert response.status_code == 409
    assert "already has a review" in response.content.decode()
    assert list(Review.objects.all()) == [first]


def test_an_override_without_a_reason_is_refused_by_the_server_and_keeps_the_choice(
    radiologist_web: Client, ai_positive: Study
) -> None:
    response = radiologist_web.post(review_url(ai_positive), {"finding": "NORMAL", "comment": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "A reason is required to override the AI finding (Pneumonia → Normal)" in html
    assert checked_findings(html) == ["NORMAL"]
    assert not Review.objects.exists()


def test_amending_from_the_dashboard_keeps_the_history_newest_first_and_is_audited(
    radiologist_web: Client, ai_positive: Study, radiologist: Any
) -> None:
    review_create(study=ai_positive, reviewer=RadiologistFactory(), finding="NORMAL", comment="Thymus.")
    response = radiologist_web.post(
        review_url(ai_positive), {"finding": "PNEUMONIA", "comment": "RLL on the lateral.", "amend": "1"}
    )
    assert response.status_code == 302
    page = radiologist_web.get(study_url(ai_positive)).content.decode()
    assert "Review amended: Pneumonia. The earlier review is kept in the history." in page
    history = re.search(r'<ol class="reviews" id="review-list">(.*?)</ol>', page, re.S)
    assert history is not None
    items = re.findall(r"<li class=\"review-item\"[^>]*>\s*<p><strong>(\w+)</strong>", history.group(1))
    assert items == ["Pneumonia", "Normal"]
    assert "amendment" in history.group(1) and "standing" in history.group(1)
    assert AuditEvent.objects.filter(action="study.review_amended", actor_name=radiologist.username).count() == 1


def _completed(priority: int, minutes_ago: int) -> Study:
    return PredictionFactory(
        study=StudyFactory(
            completed=True, priority=priority, created_at=timezone.now() - timedelta(minutes=minutes_ago)
        ),
        probability=0.9,
    ).study


def test_save_and_next_walks_the_awaiting_review_queue_in_worklist_order(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    current = _completed(priority=0, minutes_ago=50)
    urgent = _completed(priority=5, minutes_ago=1)
    older = _completed(priority=0, minutes_ago=40)
    newer = _completed(priority=0, minutes_ago=10)
    ReviewFactory(study=_completed(priority=9, minutes_ago=60))  # reviewed: not in the queue
    StudyFactory(priority=9)  # still queued: not in the queue

    visited = []
    study = current
    for _ in range(4):
        response = radiologist_web.post(review_url(study), {"finding": "PNEUMONIA", "then": "next"})
        assert response.status_code == 302
        visited.append(response["Location"])
        if response["Location"] == reverse("dashboard:worklist"):
            break
        study = Study.objects.get(id=response["Location"].rstrip("/").split("/")[-1])

    assert visited == [study_url(urgent), study_url(older), study_url(newer), reverse("dashboard:worklist")]
    assert "No more studies awaiting review." in radiologist_web.get(visited[-1]).content.decode()


def test_the_next_unreviewed_selector_skips_the_excluded_study(
    ai_positive: Study, radiologist: Any, serving_model_version: ModelVersion
) -> None:
    assert study_next_unreviewed(user=radiologist, exclude=ai_positive.id) is None
    assert study_next_unreviewed(user=radiologist) == ai_positive
