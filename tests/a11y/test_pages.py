"""Accessibility (axe-core) and the acceptance screenshots of issue 10, in Debian's Chromium through Playwright.

axe-core comes from npm (``make axe``, pinned in the Makefile) and runs in the page through
``tests.browser_support.axe_violations``; serious and critical findings fail. Screenshots of the worklist and the
study page at 1440×900, 1920×1080 and 390×844 go to ``var/screenshots/`` (``PNEUMO_SCREENSHOT_DIR``), and at 390 px
neither page may scroll sideways.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from diagnosis.models import ModelVersion, Study
from tests.browser_support import SCREEN_SIZES, axe_violations, horizontal_overflow, screenshot, sideways_scrollers
from tests.factories import TEST_PASSWORD, ModelVersionFactory, PredictionFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.browser


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _chest(size: int = 512) -> bytes:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    lungs = np.exp(-(((y - 0.48) / 0.25) ** 2 + ((np.abs(x - 0.5) - 0.19) / 0.12) ** 2))
    body = np.exp(-(((y - 0.55) / 0.55) ** 2 + ((x - 0.5) / 0.42) ** 2))
    return _png((np.clip(0.15 + 0.7 * body - 0.45 * lungs, 0, 1) * 255).astype(np.uint8))


def _heatmap(size: int = 512) -> bytes:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    heat = np.exp(-(((y - 0.6) / 0.13) ** 2 + ((x - 0.32) / 0.1) ** 2))
    return _png((np.stack([heat, heat * 0.6, 1 - heat], axis=-1) * 255).astype(np.uint8))


@pytest.fixture
def reading_room(transactional_db: None) -> dict[str, Any]:
    """A staff radiologist, a calibrated version, and a worklist of the usual mix (one study with a heatmap)."""
    user = UserFactory(username="ada.reader", first_name="Ada", last_name="Reader", radiologist=True, is_staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    version = ModelVersionFactory(version="resnet50-v7")
    now = timezone.now()
    study = PredictionFactory(
        probability=0.873,
        heatmap=ContentFile(_heatmap(), name="heatmap.png"),
        study__model_version=version,
        study__priority=87,
        study__created_at=now - timedelta(minutes=7),
        study__width=512,
        study__height=512,
        study__display_image=ContentFile(_chest(), name="display.png"),
        study__patient_id="PAT-004211",
        study__accession_number="ACC-88120",
        study__format=Study.Format.DICOM,
        study__dicom_metadata={"modality": "DX", "view_position": "PA", "patient_sex": "F", "patient_age": "034Y"},
    ).study
    PredictionFactory(probability=0.12, study__model_version=version, study__patient_id="PAT-001877")
    StudyFactory(model_version=version, status=Study.Status.PROCESSING, patient_id="PAT-009001")
    StudyFactory(model_version=version, status=Study.Status.FAILED, patient_id="PAT-000013", error="No pixel data.")
    return {"user": user, "study": study, "version": version}


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")


def _report(found: dict[str, list[dict[str, Any]]]) -> str:
    return "\n".join(
        f"{page}: [{v['impact']}] {v['id']}: {v['help']} at {', '.join(v['nodes'])}"
        for page, violations in found.items()
        for v in violations
    )


def test_axe_finds_no_serious_or_critical_violations(live_server: Any, page: Any, reading_room: dict[str, Any]) -> None:
    base = live_server.url
    found: dict[str, list[dict[str, Any]]] = {}
    page.goto(f"{base}/accounts/login/")
    found["login"] = axe_violations(page)
    _log_in(page, base, reading_room["user"].username)
    version: ModelVersion = reading_room["version"]
    for name, path in (
        ("worklist", "/"),
        ("upload", reverse("dashboard:upload")),
        ("study", reverse("dashboard:study", args=[reading_room["study"].id])),
        ("admin model version", reverse("admin:diagnosis_modelversion_change", args=[version.pk])),
        ("admin traffic", reverse("admin:diagnosis_modelversion_traffic")),
        ("admin training form", reverse("admin:diagnosis_trainingrun_add")),
    ):
        page.goto(base + path)
        page.wait_for_load_state("load")
        found[name] = axe_violations(page)
    found = {name: violations for name, violations in found.items() if violations}
    assert not found, "axe-core, serious or critical:\n" + _report(found)


def test_worklist_and_study_screenshots_at_three_sizes_and_no_sideways_scrolling_on_a_phone(
    live_server: Any, browser: Any, reading_room: dict[str, Any]
) -> None:
    base = live_server.url
    overflow: dict[str, int] = {}
    for width, height in SCREEN_SIZES:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        try:
            _log_in(page, base, reading_room["user"].username)
            for name, path in (
                ("worklist", "/"),
                ("study", reverse("dashboard:study", args=[reading_room["study"].id])),
            ):
                page.goto(base + path)
                page.wait_for_load_state("load")
                shot = screenshot(page, f"{name}-{width}x{height}.png", full_page=False)
                assert shot.stat().st_size > 0
                if width <= 390:
                    overflow[f"{name} at {width} px: page"] = horizontal_overflow(page)
                    for scroller in sideways_scrollers(page):
                        overflow[f"{name} at {width} px: {scroller}"] = 1
        finally:
            context.close()
    sideways = sorted(name for name, px in overflow.items() if px > 0)
    assert not sideways, "sideways scrolling on a phone (page: CSS px beyond the viewport):\n" + "\n".join(
        f"{name} ({overflow[name]} px)" if name.endswith("page") else name for name in sideways
    )
    assert re.fullmatch(r"[a-z]+-\d+x\d+\.png", shot.name)
