"""An admin launches training from Django admin; it runs on the training queue while screening goes on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Study, TrainingRun
from tests.integration.conftest import WorkerProcess, wait_for
from tests.integration.test_workflow import chest_like_png
from tests.mlcore.helpers_ml import write_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_training_run_launched_from_admin_registers_a_version_while_screening_goes_on(
    celery_worker_process: WorkerProcess,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    trainer = WorkerProcess(worker_env, tmp_path / "trainer.log", "trainer@localhost", queues="training")
    trainer.start()
    try:
        data = write_dataset(tmp_path / "chest_xray", n_train=14, seed=4)
        admin = User.objects.create_superuser("ada", password="admin-password-1")
        web = Client()
        web.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
        response = web.post(
            reverse("admin:diagnosis_trainingrun_add"),
            {
                "data_dir": str(data),
                "image_size": "32",
                "weights": "none",
                "phase1_epochs": "1",
                "phase2_epochs": "1",
                "batch_size": "4",
                "target_sensitivity": "0.95",
                "version": "ward-v2",
            },
        )
        assert response.status_code == 302, response.content[:2000]
        run = TrainingRun.objects.get()

        wait_for(
            lambda: TrainingRun.objects.get(pk=run.pk).status != TrainingRun.Status.QUEUED,
            timeout=120,
            on_timeout=trainer.log_tail,
        )
        # Screening goes on meanwhile: a study uploaded now completes on the inference worker.
        integrator = User.objects.create_user("ris")
        integrator.groups.add(Group.objects.get(name="integrator"))
        api = APIClient()
        api.force_authenticate(integrator)
        upload = api.post("/api/v1/studies/", {"file": io.BytesIO(chest_like_png(seed=11))}, format="multipart")
        assert upload.status_code == 202
        study_id = upload.json()["id"]
        wait_for(
            lambda: Study.objects.get(id=study_id).status == "completed",
            timeout=240,
            on_timeout=celery_worker_process.log_tail,
        )

        wait_for(
            lambda: TrainingRun.objects.get(pk=run.pk).status not in ("queued", "running"),
            timeout=600,
            interval=1,
            on_timeout=trainer.log_tail,
        )
    finally:
        trainer.stop()
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert Study.objects.get(id=study_id).completed_at < run.finished_at  # screened while training ran
    assert run.epoch is not None and run.val_auc is not None and len(run.progress_log) == 2  # one per epoch
    version = ModelVersion.objects.get(version="ward-v2")
    assert run.model_version == version and version.status == ModelVersion.Status.REGISTERED
    assert version.threshold_calibrated_at is not None  # threshold chosen on its own validation data
    page = web.get(reverse("admin:diagnosis_trainingrun_change", args=[run.pk]))
    assert page.status_code == 200 and b"ward-v2" in page.content
    actions = list(AuditEvent.objects.filter(action__startswith="training.").values_list("action", flat=True))
    assert actions[0] == "training.queued" and actions[-1] == "training.succeeded"
