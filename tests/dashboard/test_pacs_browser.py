"""PACS studies on the worklist and study page in a real browser: readable, no CSP violation, no sideways scroll."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis.models import DicomStudy
from tests.browser_support import screenshot, watch_csp_violations
from tests.dicom_factories import pacs_study
from tests.factories import TEST_PASSWORD, ModelVersionFactory, PredictionFactory, RadiologistFactory

pytestmark = pytest.mark.browser


def test_a_radiologist_sees_pacs_images_as_image_k_of_n_and_opens_one(
    live_server: Any, transactional_db: None, page: Any
) -> None:
    radiologist = RadiologistFactory(username="rita.radiologist")
    ModelVersionFactory(version="resnet50-v3")
    pacs_study(
        images=2,
        calling_ae_title="PACS_MAIN",
        accession_number="ACC-20261130-17",
        patient_name="LOVELACE^ADA^K",
        study_instance_uid="1.2.826.0.1.3680043.10.543.20261130.17",
    )
    [stow] = pacs_study(received_via=DicomStudy.Via.STOW_RS, calling_ae_title="", patient_name="TURING^ALAN")
    PredictionFactory(study__patient_id="PAT-000777", study__original_filename="chest_pa.png")

    csp_violations = watch_csp_violations(page)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(radiologist.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/?scope=all")

    rows = page.locator("#worklist-rows tr[data-study-id]")
    assert rows.count() == 4
    assert page.locator(".image-position", has_text="image 2 of 2").is_visible()
    assert page.get_by_text("PACS STOW-RS").is_visible()
    assert page.get_by_text("LOVELACE, ADA K").first.is_visible()
    overflow = page.eval_on_selector(".table-wrap", "el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the worklist scrolls sideways by {overflow}px at 1440 px"
    screenshot(page, "worklist-pacs.png")

    page.locator(".study-link").filter(has_text=stow.patient_id).click()
    page.wait_for_url(f"{live_server.url}/studies/{stow.id}/")
    assert page.locator("#study-origin").inner_text().startswith("PACS STOW-RS")
    page.locator(".rr-details summary").click()  # the FHIR link sits with the study details
    assert page.locator("#fhir-link").is_visible()
    screenshot(page, "study-pacs.png")

    page.get_by_role("link", name="Help").click()
    assert page.get_by_role("heading", name="Connecting a PACS").is_visible()
    screenshot(page, "help.png")
    assert csp_violations == []
