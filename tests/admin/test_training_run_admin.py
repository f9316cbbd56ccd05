"""Training runs and clinical records in admin: launch, watch, cancel; audit trail and studies are read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import AuditEvent, TrainingRun
from tests.factories import ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:diagnosis_trainingrun_{name}", args=args)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "kermany" / "train" / "NORMAL").mkdir(parents=True)
    (tmp_path / "kermany" / "train" / "PNEUMONIA").mkdir(parents=True)
    return tmp_path / "kermany"


FORM = {
    "image_size": "224",
    "weights": "none",
    "phase1_epochs": "5",
    "phase2_epochs": "3",
    "batch_size": "16",
    "target_sensitivity": "0.95",
    "version": "ward-v2",
}


def test_launching_a_run_queues_it_on_the_training_queue(
    staff_web: Client, admin_user: Any, data_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    assert b"Launch training" in staff_web.get(url("add")).content
    with (
        mock.patch("diagnosis.tasks.training.training_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_web.post(url("add"), {**FORM, "data_dir": str(data_dir)})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == url("change", run.pk)
    delay.assert_called_once_with(run.pk)
    assert (run.version, run.image_size, run.phase1_epochs, run.phase2_epochs, run.batch_size) == (
        "ward-v2",
        224,
        5,
        3,
        16,
    )
    event = AuditEvent.objects.get(action="training.queued")
    assert (event.actor_id, event.subject_id) == (admin_user.pk, str(run.pk))


def test_a_bad_data_folder_is_refused_on_the_form(staff_web: Client, tmp_path: Path) -> None:
    with mock.patch("diagnosis.tasks.training.training_run_task.delay") as delay:
        response = staff_web.post(url("add"), {**FORM, "data_dir": str(tmp_path)})
    assert response.status_code == 200 and "with a train/ folder" in response.content.decode()
    delay.assert_not_called()
    assert not TrainingRun.objects.exists()


def test_a_running_run_shows_its_progress_refreshes_and_can_be_cancelled(
    staff_web: Client, admin_user: Any, data_dir: Path
) -> None:
    run = TrainingRun.objects.create(
        data_dir=str(data_dir),
        version="ward-v3",
        status=TrainingRun.Status.RUNNING,
        phase=2,
        epoch=4,
        epochs=20,
        val_auc=0.9612,
        best_val_auc=0.9655,
        seconds_per_epoch=312.0,
        eta_seconds=4980.0,
        created_by=admin_user,
        started_at=timezone.now(),
        progress_log=[
            {"phase": 1, "epoch": e, "epochs": 15, "loss": 0.3, "val_auc": 0.9, "seconds": 300} for e in range(1, 9)
        ]
        + [{"phase": 2, "epoch": e, "epochs": 20, "loss": 0.2, "val_auc": 0.96, "seconds": 312} for e in range(1, 5)],
    )
    page = staff_web.get(url("change", run.pk)).content.decode()
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "phase 2/2, epoch 4/20 — fine-tuning" in page
    assert "0.961 (best 0.966)" in page and "at most 1 h 23 min" in page
    assert "43 % of the most epochs" in page  # 12 epochs done of at most 8 + 20
    assert 'id="cancel-run"' in page
    assert "phase 2/2, epoch 4/20" in staff_web.get(url("changelist")).content.decode()

    response = staff_web.post(url("cancel", run.pk), follow=True)
    run.refresh_from_db()
    assert run.cancel_requested and run.status == TrainingRun.Status.RUNNING
    assert "Cancel requested" in response.content.decode() and 'id="cancel-run"' not in response.content.decode()
    assert AuditEvent.objects.get(action="training.cancel_requested").actor_id == admin_user.pk
    assert staff_web.get(url("cancel", run.pk)).status_code == 405

    # The worker never answers: the admin marks the run cancelled.
    assert 'id="force-cancel-run"' in response.content.decode()
    staff_web.post(url("cancel", run.pk), {"force": "1"})
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED
    assert AuditEvent.objects.filter(action="training.cancelled", actor_id=admin_user.pk).exists()


def test_a_finished_run_links_its_version_and_stops_refreshing(staff_web: Client, data_dir: Path) -> None:
    version = ModelVersionFactory(version="ward-v4")
    run = TrainingRun.objects.create(
        data_dir=str(data_dir),
        version="ward-v4",
        status=TrainingRun.Status.SUCCEEDED,
        model_version=version,
        best_val_auc=0.97,
        finished_at=timezone.now(),
    )
    page = staff_web.get(url("change", run.pk)).content.decode()
    assert 'http-equiv="refresh"' not in page and 'id="cancel-run"' not in page
    assert reverse("admin:diagnosis_modelversion_change", args=[version.pk]) in page


def test_admin_forms_need_a_csrf_token(admin_user: Any, data_dir: Path) -> None:
    run = TrainingRun.objects.create(data_dir=str(data_dir), version="x", status=TrainingRun.Status.RUNNING)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(url("cancel", run.pk)).status_code == 403
    version = ModelVersionFactory()
    assert client.post(reverse("admin:diagnosis_modelversion_action", args=[version.pk, "retire"])).status_code == 403
    assert not TrainingRun.objects.filter(cancel_requested=True).exists()


def test_training_runs_cannot_be_deleted(staff_web: Client, data_dir: Path) -> None:
    run = TrainingRun.objects.create(data_dir=str(data_dir), version="x", status=TrainingRun.Status.FAILED)
    assert staff_web.get(url("delete", run.pk)).status_code == 403


def test_audit_events_are_read_only_in_admin(staff_web: Client, admin_user: Any) -> None:
    from diagnosis.services.audit import audit_record

    event = audit_record(action="model.activated", subject_type="model_version", subject_id="v1", actor=admin_user)
    change = reverse("admin:diagnosis_auditevent_change", args=[event.pk])
    assert staff_web.get(change).status_code == 200  # viewable
    assert b'name="_save"' not in staff_web.get(change).content
    assert staff_web.post(change, {"action": "tampered"}).status_code == 403
    assert staff_web.get(reverse("admin:diagnosis_auditevent_add")).status_code == 403
    assert staff_web.get(reverse("admin:diagnosis_auditevent_delete", args=[event.pk])).status_code == 403


def test_studies_are_read_only_and_opening_one_is_audited(staff_web: Client, admin_user: Any) -> None:
    study = PredictionFactory().study
    change = reverse("admin:diagnosis_study_change", args=[study.pk])
    page = staff_web.get(change).content.decode()
    assert study.patient_id in page and 'name="_save"' not in page and "/original" not in page
    viewed = AuditEvent.objects.get(action="study.viewed", subject_id=str(study.pk))
    assert viewed.actor_id == admin_user.pk
    assert staff_web.get(reverse("admin:diagnosis_study_delete", args=[study.pk])).status_code == 403
    assert staff_web.get(reverse("admin:diagnosis_prediction_add")).status_code == 403
    assert staff_web.get(reverse("admin:diagnosis_review_changelist")).status_code == 200
