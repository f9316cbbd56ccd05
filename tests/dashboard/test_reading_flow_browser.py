"""Acceptance test of issue 10: the whole reading flow, driven by the keyboard in Chromium.

1. the worklist opens on "Awaiting review"; 2. j + Enter opens the first study; 3. zoom and window by keys;
4. the heatmap toggles; 5. an override with a reason; 6. "save and next" lands on the next unreviewed study;
7. the overridden study, reloaded, shows the standing review and no key changes it; 8. the explicit amend action
changes it, with the history and the audit rows to show for it.
"""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis.models import AuditEvent, Review
from tests.browser_support import screenshot, wait_until, watch_csp_violations
from tests.dashboard.test_browser import log_in
from tests.dashboard.test_viewer_browser import _canvas_pixels, _screened_12_bit_study
from tests.factories import PredictionFactory, RadiologistFactory

pytestmark = pytest.mark.browser

READY = "document.getElementById('viewer-stage').dataset.state === 'ready'"


def test_a_radiologist_reads_overrides_moves_on_and_amends_by_keyboard(
    live_server: Any, transactional_db: None, page: Any
) -> None:
    radiologist = RadiologistFactory(username="kim.keys", first_name="Kim", last_name="Keys")
    first = _screened_12_bit_study()  # AI: PNEUMONIA at 0.91, the top of the queue
    following = PredictionFactory(probability=0.2, study__patient_id="PAT-NEXT").study
    csp_violations = watch_csp_violations(page)
    log_in(page, live_server.url, radiologist.username)
    page.set_viewport_size({"width": 1440, "height": 900})

    # 1. The worklist opens on the studies awaiting review, the AI-positive one first.
    page.goto(f"{live_server.url}/")
    assert page.locator(".worklist-tab[aria-current=page]").get_attribute("data-scope") == "awaiting"
    rows = page.locator("#worklist-rows tr[data-study-id]")
    assert rows.count() == 2 and rows.first.get_attribute("data-study-id") == str(first.id)

    # 2. j selects the first row, Enter opens it.
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/studies/{first.id}/")
    wait_until(page, READY)

    # 3. Zoom and window by keys: the zoom readout and the rendered pixels change.
    stage = page.locator("#viewer-stage")
    page.keyboard.press("h")  # 4. the heatmap off (compared below), so only the radiograph is sampled
    wait_until(page, "!document.getElementById('heatmap-toggle').checked")
    before = _canvas_pixels(page)
    width_before = stage.get_attribute("data-width")
    page.keyboard.press("Shift+Digit3")  # the lung window preset
    wait_until(page, f"document.getElementById('viewer-stage').dataset.width !== '{width_before}'")
    page.keyboard.press("+")
    # The readout and the canvas change on the next animation frame.
    wait_until(page, "document.getElementById('viewer-zoom').textContent === '125 %'")
    after = _canvas_pixels(page)
    assert sum(1 for a, b in zip(before, after, strict=True) if abs(a - b) > 8) > len(before) // 4
    # 4. The heatmap back on with the same key.
    page.keyboard.press("h")
    wait_until(page, "document.getElementById('heatmap-toggle').checked")
    screenshot(page, "reading-flow-zoomed.png")

    # 5. Override the AI's PNEUMONIA with NORMAL: key 1, c to write the reason, Escape out of the box.
    page.keyboard.press("Digit1")
    assert page.locator("[data-finding=NORMAL]").is_checked()
    page.keyboard.press("c")
    page.keyboard.type("Thymic shadow, lungs clear.")
    page.locator("#review-comment").blur()  # leave the text box; keys act on the page again
    # 6. Shift+S: save and next unreviewed.
    page.keyboard.press("Shift+S")
    page.wait_for_url(f"{live_server.url}/studies/{following.id}/")
    review = Review.objects.get(study=first)
    assert (review.finding, review.agrees_with_model) == ("NORMAL", False)
    assert review.comment == "Thymic shadow, lungs clear."

    # 7. Back to the overridden study: the standing review shows, and no key changes it.
    page.keyboard.press("k")  # previous study in worklist order
    page.wait_for_url(f"{live_server.url}/studies/{first.id}/")
    standing = page.locator("#standing-review")
    assert "Normal — overridden (AI: Pneumonia) by Kim Keys at" in standing.inner_text()
    assert page.locator("input[data-finding]:checked").count() == 0
    page.keyboard.press("Digit2")
    page.keyboard.press("s")
    page.keyboard.press("Shift+S")
    page.wait_for_timeout(300)
    assert page.url == f"{live_server.url}/studies/{first.id}/"
    assert Review.objects.filter(study=first).count() == 1
    screenshot(page, "reading-flow-standing.png")

    # 8. Amend it through the explicit action, by keyboard: focus "Amend review", Enter, choose, reason, save.
    page.locator("[data-action=amend]").focus()
    page.keyboard.press("Enter")
    assert page.locator("#review-form").is_visible()
    page.keyboard.press("Digit2")
    page.keyboard.press("c")
    page.keyboard.type("Second look: RLL consolidation on the lateral.")
    page.locator("#review-comment").blur()
    page.keyboard.press("s")
    page.locator("#standing-review[data-standing-finding=PNEUMONIA]").wait_for()
    assert "Pneumonia — amended (was Normal) by Kim Keys" in page.locator("#standing-review").inner_text()
    history = page.locator("#review-list li.review-item")
    assert history.count() == 2
    assert "Normal" in history.nth(1).inner_text() and "Thymic shadow" in history.nth(1).inner_text()
    actions = list(
        AuditEvent.objects.filter(subject_id=str(first.id), action__startswith="study.review")
        .order_by("id")
        .values_list("action", flat=True)
    )
    overrides = AuditEvent.objects.filter(subject_id=str(first.id), action="study.overridden").count()
    assert (overrides, actions) == (1, ["study.review_amended"])
    screenshot(page, "reading-flow-amended.png")
    assert csp_violations == []
