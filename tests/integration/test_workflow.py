"""End to end through the API against a real worker, PostgreSQL and Redis: upload, poll, overlay, review, audit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, Prediction, Study
from diagnosis.services.audit import audit_chain_verify
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def chest_like_png(width: int = 320, height: int = 256, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    lungs = 120 + 80 * np.exp(-(((xx - width * 0.3) / (width * 0.15)) ** 2 + ((yy - height / 2) / (height * 0.3)) ** 2))
    image = np.clip(lungs + rng.normal(0, 12, size=lungs.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def test_study_goes_from_upload_to_completed_with_overlay_review_and_audit(
    celery_worker_process: WorkerProcess,
) -> None:
    integrator = User.objects.create_user("ris-gateway")
    integrator.groups.add(Group.objects.get(name="integrator"))
    radiologist = User.objects.create_user("dr-house")
    radiologist.groups.add(Group.objects.get(name="radiologist"))
    api = _client_for(integrator)

    png = chest_like_png()
    response = api.post(
        "/api/v1/studies/",
        {"file": io.BytesIO(png), "patient_id": "P-001", "accession_number": "ACC-1"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    study_id = response.json()["id"]
    assert response.json()["status"] == "queued"

    def completed() -> dict | None:
        body = api.get(f"/api/v1/studies/{study_id}/").json()
        return body if body["status"] in ("completed", "failed") else None

    body = wait_for(completed, timeout=240, on_timeout=celery_worker_process.log_tail)
    assert body["status"] == "completed", body
    prediction = body["prediction"]
    assert 0.0 <= prediction["probability"] <= 1.0
    assert prediction["label"] in ("NORMAL", "PNEUMONIA")
    assert prediction["model_version"] == "integration-demo"
    assert prediction["threshold"] == pytest.approx(0.5)
    assert (prediction["probability"] >= prediction["threshold"]) == (prediction["label"] == "PNEUMONIA")

    overlay = api.get(f"/api/v1/studies/{study_id}/overlay/")
    assert overlay.status_code == 200
    assert overlay["Content-Type"] == "image/png"
    overlay_bytes = b"".join(overlay.streaming_content) if overlay.streaming else overlay.content
    overlay_image = Image.open(io.BytesIO(overlay_bytes))
    assert overlay_image.size == (320, 256)  # at the upload's own resolution

    stored = Prediction.objects.get(study_id=study_id)
    assert stored.preprocessing["clahe_clip_limit"] == 2.0
    assert stored.preprocessing["image_size"] == 64

    reviewer = APIClient()
    reviewer.force_authenticate(radiologist)
    review = reviewer.post(f"/api/v1/studies/{study_id}/review/", {"finding": "PNEUMONIA", "comment": "RLL"})
    assert review.status_code == 201, review.content

    actions = list(AuditEvent.objects.filter(subject_id=study_id).values_list("action", flat=True))
    workflow = [a for a in actions if a not in ("study.viewed", "study.image_viewed")]
    assert workflow[:3] == ["study.uploaded", "inference.started", "inference.completed"]
    assert workflow[-1] in ("study.reviewed", "study.overridden")
    # Every poll of the detail and the overlay fetch were views of patient data, each audited.
    assert "study.viewed" in actions and "study.image_viewed" in actions
    verification = audit_chain_verify()
    assert verification.ok, verification
    assert verification.checked == AuditEvent.objects.count()


def test_a_bad_image_ends_failed_with_a_reason_not_lost(celery_worker_process: WorkerProcess) -> None:
    """A PNG whose header is fine but whose pixel stream is garbage passes upload checks; the worker fails it."""
    import struct
    import zlib

    integrator = User.objects.create_user("pacs")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = _client_for(integrator)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 256, 256, 8, 0, 0, 0, 0)
    garbage = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not a zlib stream") + chunk(b"IEND", b"")
    response = api.post("/api/v1/studies/", {"file": io.BytesIO(garbage)}, format="multipart")
    assert response.status_code == 202, response.content
    study_id = response.json()["id"]

    wait_for(
        lambda: Study.objects.get(id=study_id).status in ("completed", "failed"),
        timeout=240,
        on_timeout=celery_worker_process.log_tail,
    )
    study = Study.objects.get(id=study_id)
    assert study.status == "failed"
    assert study.error and "Traceback" not in study.error
    assert AuditEvent.objects.filter(subject_id=study_id, action="inference.failed").exists()
