"""The radiologist's whole flow in headless Chromium against a real worker, PostgreSQL and Redis."""

from __future__ import annotations

from typing import Any

import pytest

from diagnosis.models import AuditEvent, Review, Study
from diagnosis.services.audit import audit_chain_verify
from tests.browser_support import browser, page, screenshot, wait_until  # noqa: F401 - fixtures
from tests.dashboard.test_browser import chest_like_png, log_in
from tests.factories import RadiologistFactory
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]


def test_radiologist_uploads_reads_the_ai_result_and_reviews_it(
    live_server: Any,
    celery_worker_process: WorkerProcess,
    page: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("diagnosis.dashboard.views.WORKLIST_POLL_SECONDS", 1)
    radiologist = RadiologistFactory(username="rita.radiologist")
    log_in(page, live_server.url, radiologist.username)

    page.goto(f"{live_server.url}/upload/")
    page.locator("input[type=file]").set_input_files(
        [{"name": "chest.png", "mimeType": "image/png", "buffer": chest_like_png(384)}]
    )
    page.get_by_label("Patient ID for chest.png").fill("PAT-E2E-1")
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-done").wait_for(state="visible")
    study = Study.objects.get(patient_id="PAT-E2E-1")

    # The worklist refreshes by itself as the worker finishes the study.
    page.goto(f"{live_server.url}/?scope=all")
    row = page.locator(f"#study-{study.id}")
    wait_for(
        lambda: row.get_attribute("data-status") in ("completed", "failed"),
        timeout=240,
        interval=1,
        on_timeout=celery_worker_process.log_tail,
    )
    assert row.get_attribute("data-status") == "completed", Study.objects.get(id=study.id).error
    assert "NOT VALIDATED" in row.inner_text()  # the demo model is flagged on every row it produced
    screenshot(page, "e2e-worklist.png")

    row.locator("a.study-link").click()
    page.wait_for_url(f"{live_server.url}/studies/{study.id}/")
    wait_until(
        page,
        "['xray-image', 'heatmap-layer'].every(id => { const i = document.getElementById(id);"
        " return i.complete && i.naturalWidth > 0; })",
    )
    assert page.locator("#unvalidated-banner").is_visible()
    natural = page.eval_on_selector("#heatmap-layer", "el => [el.naturalWidth, el.naturalHeight]")
    assert natural == [384, 384]  # the Grad-CAM heatmap is at the upload's own resolution
    screenshot(page, "e2e-study.png")

    page.get_by_label("Comment").fill("Agree.")
    page.locator("#review-submit").click()
    page.wait_for_url(f"{live_server.url}/studies/{study.id}/")
    review = Review.objects.get(study=study)
    assert review.reviewer_id == radiologist.id and review.agrees_with_model is True

    actions = list(AuditEvent.objects.filter(subject_id=str(study.id)).values_list("action", flat=True))
    workflow = [a for a in actions if a not in ("study.viewed", "study.image_viewed")]
    assert workflow == ["study.uploaded", "inference.started", "inference.completed", "study.reviewed"]
    assert "study.viewed" in actions and "study.image_viewed" in actions
    assert audit_chain_verify().ok
