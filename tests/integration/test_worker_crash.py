"""A worker killed in the middle of a study: the study still completes once a worker comes back."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, Prediction, Study
from tests.integration.conftest import WorkerProcess, wait_for
from tests.integration.test_workflow import chest_like_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _upload_and_wait_until_processing(worker: WorkerProcess, *, username: str, seed: int) -> str:
    """Submit one study and return its id once the worker holds it: the moment a crash is meant to hit."""
    integrator = User.objects.create_user(username)
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.force_authenticate(integrator)
    response = api.post("/api/v1/studies/", {"file": io.BytesIO(chest_like_png(seed=seed))}, format="multipart")
    assert response.status_code == 202
    study_id: str = response.json()["id"]
    # The first study of a fresh worker loads TensorFlow and the model: seconds during which it is "processing".
    wait_for(
        lambda: Study.objects.get(id=study_id).status == "processing",
        timeout=120,
        interval=0.05,
        on_timeout=worker.log_tail,
    )
    return study_id


def test_study_completes_after_its_worker_is_killed_mid_study(celery_worker_process: WorkerProcess) -> None:
    study_id = _upload_and_wait_until_processing(celery_worker_process, username="modality", seed=3)
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


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent's pid
            children.append(int(stat.parent.name))
    return children


def test_study_completes_after_its_pool_child_is_killed_mid_study(celery_worker_process: WorkerProcess) -> None:
    """Only the pool child dies (OOM killer, a decoder crash); the worker's main process lives on."""
    study_id = _upload_and_wait_until_processing(celery_worker_process, username="modality-2", seed=4)
    assert celery_worker_process.process is not None
    children = _children(celery_worker_process.process.pid)
    assert len(children) == 1, children  # --concurrency 1: one pool child, the one holding the study
    os.kill(children[0], signal.SIGKILL)

    wait_for(
        lambda: Study.objects.get(id=study_id).status in ("completed", "failed"),
        timeout=240,
        on_timeout=celery_worker_process.log_tail,
    )
    study = Study.objects.get(id=study_id)
    assert study.status == "completed", study.error
    assert study.attempts == 2  # the same task, redelivered to a new child, took its own study back
    assert Prediction.objects.filter(study_id=study_id, is_shadow=False).count() == 1
    assert celery_worker_process.process.poll() is None  # the worker itself never stopped
