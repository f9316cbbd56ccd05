"""POST /api/v1/studies/: accepted uploads are queued; refused ones answer why and leave nothing behind."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Study
from tests.factories import jpeg_bytes, png_bytes, png_header_only

pytestmark = pytest.mark.django_db

URL = "/api/v1/studies/"


def ct_small_bytes() -> bytes:
    return Path(get_testdata_file("CT_small.dcm")).read_bytes()


def dicom_without_pixel_data() -> bytes:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelData
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def upload(client: APIClient, content: bytes, name: str = "chest.png", **fields: str) -> Any:
    file = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(URL, {"file": file, **fields}, format="multipart")


# --- Accepted --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "expected_format", "size"),
    [
        (png_bytes(96, 80), "chest.png", "png", (96, 80)),
        (jpeg_bytes(64, 48), "chest.jpg", "jpeg", (64, 48)),
        (ct_small_bytes(), "IMG0001", "dicom", (128, 128)),
    ],
    ids=["png", "jpeg", "dicom"],
)
def test_it_queues_a_valid_upload(
    integrator: Any,
    integrator_client: APIClient,
    serving_model_version: ModelVersion,
    enqueue: Any,
    content: bytes,
    name: str,
    expected_format: str,
    size: tuple[int, int],
) -> None:
    response = upload(integrator_client, content, name, patient_id="PAT-1", accession_number="ACC-1")

    assert response.status_code == 202, response.content
    body = response.json()
    study = Study.objects.get()
    assert body == {
        "id": str(study.id),
        "status": "queued",
        "url": f"http://testserver/api/v1/studies/{study.id}/",
        "duplicate": False,
    }
    assert response["Location"] == body["url"]
    assert (study.status, study.format, (study.width, study.height)) == ("queued", expected_format, size)
    assert study.model_version == serving_model_version
    assert (study.uploaded_by, study.source) == (integrator, Study.Source.API)
    assert (study.patient_id, study.accession_number) == ("PAT-1", "ACC-1")
    assert study.file.read() == content
    assert study.original_filename == name
    event = AuditEvent.objects.get(action="study.uploaded")
    assert (event.actor, event.subject_id) == (integrator, str(study.id))


def test_it_enqueues_inference_only_after_the_transaction_commits(
    integrator_client: APIClient,
    serving_model_version: ModelVersion,
    enqueue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(integrator_client, png_bytes())
    assert response.status_code == 202
    enqueue.assert_not_called()
    assert len(callbacks) == 1

    callbacks[0]()
    enqueue.assert_called_once_with(response.json()["id"])


def test_the_detail_of_a_new_upload_shows_it_queued_with_no_result_yet(
    integrator_client: APIClient, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    created = upload(integrator_client, png_bytes()).json()
    detail = integrator_client.get(created["url"]).json()
    assert detail["status"] == "queued"
    assert detail["model_version"] == serving_model_version.version
    assert (detail["prediction"], detail["review"]) == (None, None)
    assert (detail["image_url"], detail["heatmap_url"], detail["overlay_url"]) == (None, None, None)


# --- Refused ---------------------------------------------------------------------------------------------------


@pytest.fixture
def nothing_stored(stored_files: Callable[[], set[Path]]) -> Iterator[None]:
    before = stored_files()
    yield
    assert not Study.objects.exists()
    assert stored_files() == before
    assert not AuditEvent.objects.filter(action="study.uploaded").exists()


@pytest.mark.usefixtures("serving_model_version", "enqueue", "nothing_stored")
class TestRefusedUploads:
    @pytest.mark.parametrize(
        ("content", "name", "status", "detail"),
        [
            (b"", "empty.png", 400, "The file is empty."),
            (b"PatientName=Doe\nThis is a text file, not an image.\n" * 4, "scan.dcm", 415, "not"),
            (ct_small_bytes()[: len(ct_small_bytes()) // 2], "truncated.dcm", 400, "The DICOM file is "),
            (dicom_without_pixel_data(), "nopixels.dcm", 400, "The DICOM file contains no image (no pixel data)."),
            (png_header_only(30000, 30000), "bomb.png", 413, "The image is 30000 x 30000 pixels"),
            (png_bytes()[:-20], "cut.png", 400, "truncated"),
        ],
        ids=["empty", "text-named-dcm", "truncated-dicom", "dicom-without-pixels", "png-bomb", "truncated-png"],
    )
    def test_it_refuses_a_file_it_cannot_screen(
        self, integrator_client: APIClient, content: bytes, name: str, status: int, detail: str
    ) -> None:
        response = upload(integrator_client, content, name)
        assert response.status_code == status, response.content
        assert detail in response.json()["detail"]

    def test_it_refuses_a_file_over_the_size_limit(self, integrator_client: APIClient) -> None:
        with override_settings(PNEUMO_MAX_UPLOAD_BYTES=1000):
            response = upload(integrator_client, png_bytes(64, 64) + b"\0" * 2000)
        assert response.status_code == 413
        assert response.json()["detail"].startswith("The file is")
        assert response.json()["extra"] == {"size_bytes": len(png_bytes(64, 64)) + 2000, "limit_bytes": 1000}

    def test_it_refuses_an_announced_oversized_body_before_reading_it(self, integrator_client: APIClient) -> None:
        with override_settings(PNEUMO_MAX_UPLOAD_BYTES=1000):
            response = upload(integrator_client, b"\0" * 200_000)
        assert response.status_code == 413
        assert response.json()["detail"].startswith("The upload is 0.2 MB; the limit is")

    def test_it_requires_the_file_field(self, integrator_client: APIClient) -> None:
        response = integrator_client.post(URL, {"patient_id": "PAT-1"}, format="multipart")
        assert response.status_code == 400
        assert response.json()["detail"] == "file: No file was submitted."
        assert "file" in response.json()["errors"]

    def test_it_refuses_a_file_field_that_is_not_a_file(self, integrator_client: APIClient) -> None:
        response = integrator_client.post(URL, {"file": "not a file"}, format="multipart")
        assert response.status_code == 400
        assert response.json()["detail"].startswith("file: The submitted data was not a file.")

    def test_it_refuses_an_overlong_patient_id(self, integrator_client: APIClient) -> None:
        response = upload(integrator_client, png_bytes(), patient_id="P" * 65)
        assert response.status_code == 400
        assert response.json()["detail"] == "patient_id must be at most 64 printable characters."

    def test_it_refuses_json_bodies(self, integrator_client: APIClient) -> None:
        response = integrator_client.post(URL, {"file": "aGVsbG8="}, format="json")
        assert response.status_code == 415
        assert "Unsupported media type" in response.json()["detail"]


def test_it_answers_503_when_no_model_version_is_serving(
    integrator_client: APIClient, enqueue: Any, stored_files: Callable[[], set[Path]]
) -> None:
    before = stored_files()
    response = upload(integrator_client, png_bytes())
    assert response.status_code == 503
    assert response.json()["detail"].startswith("No model version is serving")
    assert not Study.objects.exists()
    assert stored_files() == before
    enqueue.assert_not_called()


# --- Throttling ------------------------------------------------------------------------------------------------


@pytest.fixture
def upload_rate_of_two_per_minute(settings: Any) -> Iterator[None]:
    cache.clear()
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"uploads": "2/min"}}
    yield
    cache.clear()


@pytest.mark.usefixtures("serving_model_version", "enqueue", "upload_rate_of_two_per_minute")
def test_uploads_over_the_rate_are_refused_with_retry_after(
    integrator_client: APIClient, other_integrator_client: APIClient
) -> None:
    # Different files: the same file sent again is a retry (the existing study), not a new upload.
    assert [upload(integrator_client, png_bytes(width=64 + n)).status_code for n in range(2)] == [202, 202]

    refused = upload(integrator_client, png_bytes(width=66))
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Request was throttled.")
    assert 0 < int(refused["Retry-After"]) <= 60
    assert Study.objects.count() == 2
    # The rate is per user, and reading is never throttled.
    assert upload(other_integrator_client, png_bytes()).status_code == 202
    assert integrator_client.get(URL).status_code == 200
