"""The dashboard in a real browser (Debian's headless Chromium through Playwright's sync API).

Inference is never run here: the enqueue is patched (``enqueue`` fixture), and studies with results are made by
the factories. The lead's end-to-end test drives the same pages against a real worker.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from diagnosis.models import Review, Study
from tests.browser_support import screenshot, wait_until, watch_csp_violations
from tests.factories import TEST_PASSWORD, ModelVersionFactory, PredictionFactory, RadiologistFactory, StudyFactory

pytestmark = pytest.mark.browser


# --- Synthetic pictures (so the screenshots look like the real thing) ------------------------------------------------


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _blob(shape: tuple[int, int], cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return np.exp(-(((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))


def chest_like_png(size: int = 512) -> bytes:
    """A grayscale frontal 'chest': bright body, dark lungs, a spine; enough to judge the page layout."""
    shape = (size, size)
    body = np.clip(_blob(shape, size * 0.55, size * 0.5, size * 0.55, size * 0.42) * 1.6, 0, 1)
    lungs = _blob(shape, size * 0.48, size * 0.31, size * 0.25, size * 0.12) + _blob(
        shape, size * 0.48, size * 0.69, size * 0.25, size * 0.12
    )
    spine = _blob(shape, size * 0.5, size * 0.5, size * 0.6, size * 0.035)
    image = 0.15 + 0.65 * body - 0.45 * np.clip(lungs, 0, 1) + 0.25 * spine
    return _png((np.clip(image, 0, 1) * 255).astype(np.uint8))


def heatmap_png(size: int = 512) -> bytes:
    """A jet-coloured Grad-CAM-like map focused on the right lower zone (the patient's right: image left)."""
    heat = _blob((size, size), size * 0.6, size * 0.32, size * 0.13, size * 0.1)
    r, g, b = (np.clip(1.5 - np.abs(4 * heat - k), 0, 1) for k in (3, 2, 1))
    return _png((np.stack([r, g, b], axis=-1) * 255).astype(np.uint8))


# --- Browser fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("diagnosis.dashboard.views.WORKLIST_POLL_SECONDS", 2)


def log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")  # the worklist sends an anonymous visitor to the login form
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    screenshot(page, "login.png")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")


def computed(page: Any, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"el => getComputedStyle(el).{prop}")


# --- Tests -----------------------------------------------------------------------------------------------------


def test_radiologist_opens_a_study_adjusts_the_heatmap_and_overrides_the_ai(
    live_server: Any, transactional_db: None, page: Any
) -> None:
    radiologist = RadiologistFactory(username="rita.radiologist", first_name="Rita", last_name="Marsh")
    demo = ModelVersionFactory(version="demo-untrained-v0", validated=False, threshold_calibrated_at=None)
    now = timezone.now()
    positive = PredictionFactory(
        probability=0.873,
        heatmap=ContentFile(heatmap_png(), name="heatmap.png"),
        study__model_version=demo,
        study__priority=87,
        study__created_at=now - timedelta(minutes=7),
        study__width=512,
        study__height=512,
        study__display_image=ContentFile(chest_like_png(), name="display.png"),
        study__patient_id="PAT-004211",
        study__accession_number="ACC-88120",
        study__original_filename="chest_pa.dcm",
        study__format=Study.Format.DICOM,
        study__dicom_metadata={
            "modality": "DX",
            "body_part_examined": "CHEST",
            "view_position": "PA",
            "patient_sex": "F",
            "study_date": "2026-11-24",
            "manufacturer": "ACME Radiography",
        },
    ).study
    PredictionFactory(
        probability=0.12,
        study__model_version=demo,
        study__patient_id="PAT-001877",
        study__created_at=now - timedelta(minutes=42),
    )
    StudyFactory(
        model_version=demo,
        status=Study.Status.PROCESSING,
        patient_id="PAT-009001",
        created_at=now - timedelta(minutes=3),
    )
    StudyFactory(model_version=demo, patient_id="PAT-009002", created_at=now - timedelta(minutes=1))
    StudyFactory(
        model_version=demo,
        status=Study.Status.FAILED,
        patient_id="PAT-000013",
        created_at=now - timedelta(minutes=15),
        error="The DICOM file has no pixel data, so it cannot be screened.",
    )

    csp_violations = watch_csp_violations(page)
    log_in(page, live_server.url, radiologist.username)
    page.goto(f"{live_server.url}/?scope=all")  # the worklist opens on "Awaiting review"

    assert page.locator("#worklist-rows tr[data-study-id]").count() == 5
    assert page.locator("#unvalidated-banner").is_visible()
    first_row = page.locator("#worklist-rows tr").first
    assert first_row.get_attribute("data-study-id") == str(positive.id)
    assert "PNEUMONIA" in first_row.inner_text()
    screenshot(page, "worklist.png")

    page.locator(f"#study-{positive.id} a.study-link").click()
    page.wait_for_url(f"{live_server.url}/studies/{positive.id}/")
    wait_until(
        page,
        "['xray-image', 'heatmap-layer'].every(id => { const i = document.getElementById(id);"
        " return i.complete && i.naturalWidth > 0; })",
    )
    assert page.locator("#unvalidated-banner").is_visible()
    assert page.locator("#ai-probability").inner_text() == "87.3 %"
    # The canvas viewer takes over from the <img> layers (issue 10); an older result has only the jet heatmap PNG.
    wait_until(page, "document.getElementById('viewer-stage').dataset.state === 'ready'")
    assert page.locator("#viewer-stage").get_attribute("data-heatmap") == "jet"
    assert page.locator("#heatmap-colormap").is_disabled() and page.locator("#heatmap-threshold").is_disabled()
    assert page.locator("#viewer-canvas").is_visible() and not page.locator("#xray-image").is_visible()
    screenshot(page, "study.png")
    # Worklist, login and study pages ran their scripts under the Content-Security-Policy without a refusal.
    assert csp_violations == []
    page.locator("#heatmap-opacity").fill("80")
    assert page.locator("#heatmap-opacity-value").inner_text() == "80 %"
    page.get_by_label("Show Grad-CAM heatmap").uncheck()
    assert page.locator("#heatmap-opacity").is_disabled()
    screenshot(page, "study-heatmap-hidden.png")
    page.get_by_label("Show Grad-CAM heatmap").check()
    assert page.locator("#heatmap-opacity").is_enabled()

    button = page.locator("#review-submit")
    assert button.inner_text() == "Confirm AI finding"
    page.locator("[data-finding=NORMAL]").check()  # "Normal" alone also matches "Other abnormality"
    assert button.inner_text() == "Override AI finding"
    assert page.locator("#override-note").is_visible()
    page.get_by_label("Comment").fill("Overlapping breast shadow; lungs clear on the lateral view.")
    button.click()
    page.wait_for_url(f"{live_server.url}/studies/{positive.id}/")

    screenshot(page, "study-reviewed.png")
    reviews = page.locator("#review-list")
    assert "Normal" in reviews.inner_text() and "overrides AI" in reviews.inner_text()
    assert "lungs clear on the lateral view" in reviews.inner_text()
    assert "Review recorded: Normal (overrides the AI finding)." in page.locator(".messages").inner_text()
    review = Review.objects.get(study=positive)
    assert (review.reviewer_id, review.finding, review.agrees_with_model) == (radiologist.id, "NORMAL", False)


def test_radiologist_uploads_files_and_the_open_worklist_picks_them_up(
    live_server: Any, transactional_db: None, page: Any, enqueue: Any, fast_polling: None
) -> None:
    radiologist = RadiologistFactory(username="rita.radiologist")
    ModelVersionFactory(version="resnet50-v3")
    log_in(page, live_server.url, radiologist.username)
    page.goto(f"{live_server.url}/?scope=in_progress")  # queued studies: not yet awaiting review
    assert page.locator("#worklist-rows tr[data-study-id]").count() == 0

    upload_page = page.context.new_page()
    upload_page.goto(f"{live_server.url}/upload/")
    upload_page.locator("input[type=file]").set_input_files(
        [
            {"name": "chest.png", "mimeType": "image/png", "buffer": chest_like_png(256)},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an x-ray\n"},
        ]
    )
    # Each PNG/JPEG has its own patient ID, with a preview of the file (an object URL, allowed by img-src blob:).
    upload_page.get_by_label("Patient ID for chest.png").fill("PAT-777")
    upload_page.locator(".staged-item__thumb").wait_for(state="visible")
    screenshot(upload_page, "upload-staged.png")
    upload_page.get_by_role("button", name="Upload").click()
    upload_page.locator("#upload-done").wait_for(state="visible")

    done = upload_page.locator(".upload-item[data-state=done]")
    refused = upload_page.locator(".upload-item[data-state=error]")
    assert "chest.png" in done.inner_text()
    assert done.locator("progress").evaluate("el => el.value") == 100
    assert done.locator(".upload-item__pct").inner_text() == "100 %"
    assert "Open study" in done.inner_text()
    assert "notes.txt" in refused.inner_text() and "Refused:" in refused.inner_text()
    screenshot(upload_page, "upload.png")

    study = Study.objects.get()
    assert (study.patient_id, study.source, study.original_filename) == ("PAT-777", "dashboard", "chest.png")
    enqueue.assert_called_once_with(str(study.id))

    # The worklist left open in the first tab shows the new study without a reload.
    page.locator(f"#study-{study.id}").wait_for(state="attached", timeout=10_000)
    assert "PAT-777" in page.locator(f"#study-{study.id}").inner_text()
    assert page.locator("#worklist-count").inner_text() == "1"
