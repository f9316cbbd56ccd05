"""The study viewer's endpoints (issue 10): 16-bit rendition, activation map, viewer preferences, neighbours."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from diagnosis.models import AuditEvent, Study, ViewerPreference
from tests.factories import PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db

SAMPLES = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 30  # up to 3570: needs 12 bits
INFO = {
    "format": "uint16le",
    "width": 10,
    "height": 12,
    "bits_stored": 12,
    "slope": 1.0,
    "intercept": -100.0,
    "photometric": "MONOCHROME2",
    "window_center": 1700.0,
    "window_width": 3000.0,
    "min": -100.0,
    "max": 3470.0,
}


def _with_rendition(study: Study) -> Study:
    study.display_image_16.save("image16.u16.gz", ContentFile(gzip.compress(SAMPLES.astype("<u2").tobytes())))
    study.display_image_16_info = INFO
    study.format = Study.Format.DICOM
    study.save()
    return study


def _image_views(study: Study, what: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="study.image_viewed", subject_id=str(study.id), details__what=what))


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_the_16_bit_rendition_is_served_gzip_encoded_described_and_audited(
    radiologist_web: Client, radiologist: Any
) -> None:
    study = _with_rendition(PredictionFactory().study)
    url = reverse("dashboard:study_image16", kwargs={"study_id": study.id})
    response = radiologist_web.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Encoding"] == "gzip"
    assert (response["X-Content-Type-Options"], response["Cache-Control"]) == ("nosniff", "private, no-store")
    assert (response["X-Rendition-Width"], response["X-Rendition-Height"]) == ("10", "12")
    assert (response["X-Rendition-Bits-Stored"], response["X-Rendition-Intercept"]) == ("12", "-100.0")
    assert response["X-Rendition-Format"] == "uint16le"
    raw = gzip.decompress(_body(response))
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<u2").reshape(12, 10), SAMPLES)
    [event] = _image_views(study, "image16")
    assert event.actor_id == radiologist.pk


def test_a_client_without_gzip_gets_the_raw_samples(radiologist_web: Client) -> None:
    study = _with_rendition(PredictionFactory().study)
    response = radiologist_web.get(reverse("dashboard:study_image16", kwargs={"study_id": study.id}))
    assert response.status_code == 200 and not response.has_header("Content-Encoding")
    raw = _body(response)
    assert int(response["Content-Length"]) == len(raw) == 10 * 12 * 2
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<u2").reshape(12, 10), SAMPLES)


def test_without_a_rendition_it_is_404_not_audited_and_the_page_falls_back_to_the_8_bit_image(
    radiologist_web: Client,
) -> None:
    study = PredictionFactory().study  # screened before renditions existed (or a PNG)
    response = radiologist_web.get(reverse("dashboard:study_image16", kwargs={"study_id": study.id}))
    assert response.status_code == 404 and "16-bit" in response.json()["detail"]
    assert _image_views(study, "image16") == []
    page = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()
    assert 'data-image16-url=""' in page and f'data-image-url="/api/v1/studies/{study.id}/image/"' in page
    assert "8-bit" in page


def test_the_page_points_the_viewer_at_the_rendition(radiologist_web: Client) -> None:
    study = _with_rendition(PredictionFactory().study)
    page = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()
    assert f'data-image16-url="/studies/{study.id}/image16"' in page
    assert "&quot;bits_stored&quot;: 12" in page and "12-bit" in page


def test_a_rendition_missing_from_storage_is_404_and_not_audited(radiologist_web: Client) -> None:
    study = _with_rendition(PredictionFactory().study)
    study.display_image_16.storage.delete(study.display_image_16.name)
    response = radiologist_web.get(reverse("dashboard:study_image16", kwargs={"study_id": study.id}))
    assert response.status_code == 404
    assert _image_views(study, "image16") == []


@pytest.mark.parametrize("who", ["anonymous", "integrator"])
def test_the_rendition_is_for_radiologists_only(who: str, client: Client, integrator_web: Client) -> None:
    study = _with_rendition(PredictionFactory().study)
    web = client if who == "anonymous" else integrator_web
    response = web.get(reverse("dashboard:study_image16", kwargs={"study_id": study.id}))
    assert response.status_code == (401 if who == "anonymous" else 403)
    assert not AuditEvent.objects.filter(action="study.image_viewed").exists()


def test_the_activation_map_is_served_and_audited_and_older_results_fall_back(radiologist_web: Client) -> None:
    prediction = PredictionFactory()
    url = reverse("dashboard:study_activation", kwargs={"study_id": prediction.study.id})
    assert radiologist_web.get(url).status_code == 404  # an older prediction: the page uses the jet PNG
    page = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": prediction.study.id})).content.decode()
    assert 'data-activation-url=""' in page and 'id="heatmap-colormap" disabled' in page

    prediction.activation.save("activation.png", ContentFile(b"\x89PNG\r\n\x1a\nsmall"))
    response = radiologist_web.get(url)
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert _body(response).startswith(b"\x89PNG")
    assert len(_image_views(prediction.study, "activation")) == 1
    # The existing API endpoints keep working beside it.
    assert radiologist_web.get(f"/api/v1/studies/{prediction.study.id}/heatmap/").status_code == 200
    assert radiologist_web.get(f"/api/v1/studies/{prediction.study.id}/overlay/").status_code == 200


def test_preferences_are_remembered_per_user_and_shown_on_the_next_page(
    radiologist_web: Client, radiologist: Any
) -> None:
    url = reverse("dashboard:viewer_preferences")
    response = radiologist_web.post(
        url,
        json.dumps({"heatmap_visible": False, "heatmap_opacity": 65, "colormap": "inferno", "threshold": 30}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json() == {"heatmap_visible": False, "heatmap_opacity": 65, "colormap": "inferno", "threshold": 30}
    # A partial update keeps the other settings.
    assert radiologist_web.post(url, '{"heatmap_opacity": 20}', content_type="application/json").json() == {
        "heatmap_visible": False,
        "heatmap_opacity": 20,
        "colormap": "inferno",
        "threshold": 30,
    }
    assert ViewerPreference.objects.get(user=radiologist).heatmap_opacity == 20
    study = PredictionFactory().study
    page = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()
    assert 'data-heatmap-visible="false"' in page and 'data-heatmap-opacity="20"' in page
    assert 'value="inferno" selected' in page and 'id="heatmap-toggle" aria-controls' in page  # unchecked


@pytest.mark.parametrize(
    "body",
    ['{"heatmap_opacity": 101}', '{"threshold": 96}', '{"colormap": "jet"}', '{"heatmap_visible": "yes"}', "[1]", "x"],
)
def test_preferences_refuse_bad_values_and_save_nothing(radiologist_web: Client, radiologist: Any, body: str) -> None:
    response = radiologist_web.post(reverse("dashboard:viewer_preferences"), body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]
    assert not ViewerPreference.objects.filter(user=radiologist, heatmap_opacity=101).exists()
    assert ViewerPreference.objects.filter(user=radiologist).count() <= 1


def test_preferences_need_csrf_and_a_dashboard_user(radiologist: Any, integrator_web: Client) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(radiologist, backend="django.contrib.auth.backends.ModelBackend")
    url = reverse("dashboard:viewer_preferences")
    assert strict.post(url, "{}", content_type="application/json").status_code == 403
    assert integrator_web.post(url, "{}", content_type="application/json").status_code == 403


def test_previous_and_next_follow_the_worklist_order(radiologist_web: Client) -> None:
    # Worklist order: priority first, then longest waiting.
    top = StudyFactory(completed=True, priority=1900)
    middle = StudyFactory(completed=True, priority=500)
    last = StudyFactory(completed=True, priority=500)  # same priority, received later
    page = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": middle.id})).content.decode()
    assert f'href="/studies/{top.id}/" data-nav="prev"' in page
    assert f'href="/studies/{last.id}/" data-nav="next"' in page
    first = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": top.id})).content.decode()
    assert 'data-nav="prev"' not in first and f'href="/studies/{middle.id}/" data-nav="next"' in first
