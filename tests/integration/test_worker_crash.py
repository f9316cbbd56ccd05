"""A worker killed in the middle of a study: the study still completes once a worker comes back."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, Prediction, Study
from tests.integration.conftest import WorkerProcess, wait_for
from tests.integration.test_workflow import chest_like_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_study_completes_after_its_worker_is_killed_mid_study(celery_worker_process: WorkerProcess) -> None:
    integrator = User.objects.create_user("modality")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.force_authenticate(integrator)

    response = api.post("/api/v1/studies/", {"file": io.BytesIO(chest_like_png(seed=3))}, format="multipart")
    assert response.status_code == 202
    study_id = response.json()["id"]

    # The first study of a fresh worker loads TensorFlow and the model: seconds during which it is "processing".
    wait_for(
        lambda: Study.objects.get(id=study_id).status == "processing",
        timeout=120,
        interval=0.05,
        on_timeout=celery_worker_process.log_tail,
    )
    celery_worker_process.kill()
    study = Study.objects.get(id=study_id)
    assert study.status == "processing", "the worker was meant to die in the middle of the study"
    assert study.attempts == 1

    celery_worker_process.start()  # same node name: it takes back what its previous incarnation held
    wait_for(
        lambda: Study.objects.get(id=study_id).status in ("completed", "failed"),
        timeout=240,
        on_timeout=celery_worker_process.log_tail,
    )
    study = Study.objects.get(id=study_id)
    assert study.status == "completed", study.error
    assert study.attempts == 2
    assert Prediction.objects.filter(study_id=study_id).count() == 1
    actions = list(AuditEvent.objects.filter(subject_id=study_id).values_list("action", flat=True))
    assert actions == [
        "study.uploaded",
        "inference.started",
        "inference.requeued",
        "inference.started",
        "inference.completed",
    ]
