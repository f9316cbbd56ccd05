"""The review panel in a real browser (issue 10): a standing override cannot be changed by one click; "Amend review"
reveals the form, whose reason box is required before anything is sent. The lead's keyboard acceptance test drives
the whole reading flow; this checks the panel's own script under the Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis.models import AuditEvent, Review
from diagnosis.services.reviews import review_create
from tests.browser_support import screenshot, watch_csp_violations
from tests.dashboard.test_browser import log_in
from tests.factories import ModelVersionFactory, PredictionFactory, RadiologistFactory

pytestmark = pytest.mark.browser


def test_a_standing_override_is_changed_only_through_the_amend_step_with_a_reason(
    live_server: Any, transactional_db: None, page: Any
) -> None:
    radiologist = RadiologistFactory(username="rita.radiologist", first_name="Rita", last_name="Marsh")
    ModelVersionFactory(version="resnet50-test")
    study = PredictionFactory(probability=0.9).study  # the AI says PNEUMONIA
    first = review_create(study=study, reviewer=radiologist, finding="NORMAL", comment="Thymus, not consolidation.")
    csp_violations = watch_csp_violations(page)
    log_in(page, live_server.url, radiologist.username)

    page.goto(f"{live_server.url}/studies/{study.id}/")
    standing = page.locator("#standing-review")
    assert "Normal — overridden (AI: Pneumonia) by Rita Marsh at" in standing.inner_text()
    assert "Reason: Thymus, not consolidation." in standing.inner_text()
    # No visible form, no pre-selected finding, no one-click confirm.
    assert not page.locator("#review-form").is_visible()
    assert page.locator("input[data-finding]:checked").count() == 0
    screenshot(page, "review-standing.png")

    page.locator("[data-action=amend]").click()
    assert page.locator("#review-form").is_visible()
    assert page.url.endswith(f"/studies/{study.id}/")  # revealed in place, not a reload
    page.locator("[data-finding=PNEUMONIA]").check()
    assert page.eval_on_selector("#review-comment", "el => el.required") is True
    page.locator("[data-action=save]").click()  # no reason: the browser keeps the form, nothing is sent
    assert page.eval_on_selector("#review-comment", "el => el.validity.valueMissing") is True
    assert Review.objects.count() == 1

    page.locator("#review-comment").fill("RLL opacity on the lateral view.")
    page.locator("[data-action=save]").click()
    page.wait_for_url(f"{live_server.url}/studies/{study.id}/")
    page.locator("#standing-review[data-standing-finding=PNEUMONIA]").wait_for()
    assert "Pneumonia — amended (was Normal) by Rita Marsh at" in page.locator("#standing-review").inner_text()
    assert page.locator("#review-list li.review-item").count() == 2
    assert "Review amended: Pneumonia." in page.locator(".messages").inner_text()
    screenshot(page, "review-amended.png")
    event = AuditEvent.objects.get(action="study.review_amended")
    assert event.details["previous_review_id"] == first.id
    assert csp_violations == []
