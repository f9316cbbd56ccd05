"""The triage worklist in Chromium: j/k and Enter open a study, a click anywhere on a row does too, and at 390 px
the rows are cards with nothing scrolling sideways."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.browser_support import screenshot, watch_csp_violations
from tests.factories import TEST_PASSWORD, ModelVersionFactory, PredictionFactory, RadiologistFactory

pytestmark = pytest.mark.browser


def test_keyboard_and_row_click_open_studies_and_a_phone_gets_cards(
    live_server: Any, transactional_db: None, page: Any, browser: Any
) -> None:
    radiologist = RadiologistFactory(username="rita.radiologist")
    version = ModelVersionFactory(version="resnet50-v3")
    now = timezone.now()
    first = PredictionFactory(
        probability=0.93,
        model_version=version,
        study__model_version=version,
        study__priority=1900,
        study__created_at=now - timedelta(minutes=75),
        study__patient_id="PAT-URGENT-1",
        study__dicom_metadata={"patient_age": "054Y", "patient_sex": "M", "view_position": "PA", "modality": "DX"},
    ).study
    second = PredictionFactory(
        probability=0.12, model_version=version, study__model_version=version, study__patient_id="PAT-CALM-2"
    ).study

    csp_violations = watch_csp_violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(radiologist.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.locator(".thumb").first.wait_for(state="visible")
    screenshot(page, "worklist-triage-1440.png")

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.closest('tr').dataset.studyId") == str(first.id)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/studies/{first.id}/")
    page.go_back()
    # A click on another cell (here the review column, far from the patient link) opens the study too.
    box = page.locator(f"#study-{second.id} .cell-review").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"{live_server.url}/studies/{second.id}/")
    assert csp_violations == []

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        mobile = phone.new_page()
        mobile.goto(f"{live_server.url}/accounts/login/")
        mobile.get_by_label("Username").fill(radiologist.username)
        mobile.get_by_label("Password").fill(TEST_PASSWORD)
        mobile.get_by_role("button", name="Log in").click()
        mobile.wait_for_url(f"{live_server.url}/")
        assert mobile.evaluate("getComputedStyle(document.querySelector('#worklist-rows tr')).display") == "grid"
        assert mobile.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        assert mobile.locator(f"#study-{first.id}").get_by_text("PNEUMONIA").is_visible()
        screenshot(mobile, "worklist-triage-390.png")
    finally:
        phone.close()
