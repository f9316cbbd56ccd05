"""The model-version admin as a staff user: pages, every lifecycle action (service effect + audit with the actor),
refusals shown as messages, plots served safely, and the permission checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from diagnosis.models import AuditEvent, ModelVersion
from diagnosis.services.model_registration import model_version_register
from tests.admin.conftest import MODEL_BACKEND, VALIDATION_METRICS, reviewed_prediction
from tests.factories import ModelVersionFactory, RadiologistFactory, UserFactory

pytestmark = pytest.mark.django_db


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:diagnosis_modelversion_{name}", args=args)


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def audited(action: str, subject_id: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action, subject_id=subject_id).latest("id")


@pytest.fixture
def active() -> ModelVersion:
    return ModelVersionFactory(version="v-active", metrics=VALIDATION_METRICS)


@pytest.fixture
def uncalibrated() -> ModelVersion:
    return ModelVersionFactory(
        version="v-new",
        status=ModelVersion.Status.REGISTERED,
        traffic_share=0,
        threshold_calibrated_at=None,
        threshold_method={"method": "uncalibrated"},
        activated_at=None,
    )


@pytest.fixture
def candidate() -> ModelVersion:
    return ModelVersionFactory(
        version="v-candidate", status=ModelVersion.Status.REGISTERED, traffic_share=0, activated_at=None
    )


# --- Pages ------------------------------------------------------------------------------------------------------


def test_changelist_shows_status_share_threshold_agreement_and_drift(
    staff_web: Client, active: ModelVersion, uncalibrated: ModelVersion
) -> None:
    radiologist = RadiologistFactory()
    active.validation_scores = [i / 100 for i in range(50)]  # validation: scores below 0.5; live: all 0.95
    active.save(update_fields=["validation_scores"])
    for finding in ["PNEUMONIA"] * 30 + ["NORMAL"] * 2:
        reviewed_prediction(active, 0.95, finding, reviewer=radiologist)
    page = staff_web.get(url("changelist")).content.decode()
    assert "v-active" in page and "100 %" in page and "v-new" in page
    assert "uncalibrated</span>" in page  # the badge on v-new's threshold
    assert "0.938 (n = 32)" in page  # live agreement: 30 of 32 reviews agree
    assert "lifecycle-badge--drift" in page and "drift: PSI" in page
    for link in ("register", "traffic", "ab_report"):
        assert url(link) in page


def test_version_page_shows_everything_about_a_registered_artifact(
    staff_web: Client, admin_user: Any, validated_artifact: Path
) -> None:
    version = model_version_register(path=validated_artifact, actor=admin_user)
    page = staff_web.get(url("change", version.pk)).content.decode()
    assert "Model version resnet50-v7" in page and "Registered" in page
    assert "0.3125" in page and "target sensitivity of 95% on validation (carved from train (15 %)), n = 400" in page
    assert "AUC-ROC" in page and "0.973 (95% CI 0.958–0.986)" in page
    assert "0.955 (95% CI 0.925–0.980)" in page and "0.810 (95% CI 0.755–0.862)" in page
    assert "n = 400 (200 pneumonia, 200 normal)" in page
    assert "Kermany pediatric chest X-rays, ages 1–5" in page and "Performance on adults is not established" in page
    assert "clahe" in page.lower()  # preprocessing config
    assert "best val auc during training" in page and "0.981" in page
    assert url("plot", version.pk, "roc_curve.png") in page and url("plot", version.pk, "confusion_matrix.png") in page
    assert "secret.txt" not in page
    assert 'action="' + url("action", version.pk, "activate") in page
    assert "model.registered" in page  # its audit trail


def test_plots_are_served_as_png_with_nosniff_and_only_by_name(
    staff_web: Client, admin_user: Any, validated_artifact: Path
) -> None:
    version = model_version_register(path=validated_artifact, version="plots-v1", actor=admin_user)
    response = staff_web.get(url("plot", version.pk, "roc_curve.png"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png" and response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    base = url("plot", version.pk, "roc_curve.png").rsplit("/", 1)[0]
    for name in (
        "secret.txt",
        "manifest.json",
        "..",
        "..%2Fmanifest.json",
        "%2E%2E%2Fmanifest.json",
        "roc_curve.png%00.txt",
        "missing.png",
    ):
        response = staff_web.get(f"{base}/{name}")
        assert response.status_code in (301, 302, 404), name
        assert b"weights_sha256" not in response.content and b"not a plot" not in response.content


def test_pages_and_actions_refuse_users_who_are_not_staff(active: ModelVersion, radiologist: Any) -> None:
    client = Client()
    client.force_login(radiologist, backend=MODEL_BACKEND)
    for path in (
        url("changelist"),
        url("change", active.pk),
        url("ab_report"),
        url("traffic"),
        url("register"),
        url("plot", active.pk, "roc.png"),
    ):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], path
    response = client.post(url("action", active.pk, "retire"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not AuditEvent.objects.filter(action="model.retired").exists()


def test_staff_without_the_change_permission_cannot_act(active: ModelVersion) -> None:
    clerk = UserFactory(is_staff=True)
    client = Client()
    client.force_login(clerk, backend=MODEL_BACKEND)
    assert client.post(url("action", active.pk, "retire")).status_code == 403
    assert client.get(url("traffic")).status_code == 403
    assert ModelVersion.objects.get(pk=active.pk).status == ModelVersion.Status.ACTIVE


def test_changelist_live_figures_cost_the_same_queries_for_2_or_12_versions(
    staff_web: Client,
    active: ModelVersion,
    uncalibrated: ModelVersion,
    django_assert_num_queries: Any,
    settings: Any,
) -> None:
    settings.PNEUMO_LIVE_METRICS_MIN_N = 1  # figures from 1-2 reviews, so each row shows its own
    radiologist = RadiologistFactory()
    active.validation_scores = [j / 40 for j in range(40)]
    active.save(update_fields=["validation_scores"])
    for finding in ("PNEUMONIA", "NORMAL"):
        reviewed_prediction(active, 0.9, finding, reviewer=radiologist)
    staff_web.get(url("changelist"))  # the first page warms caches (content types, permissions)
    with CaptureQueriesContext(connection) as two_versions:
        staff_web.get(url("changelist"))
    for i in range(10):
        version = ModelVersionFactory(
            version=f"v-extra-{i}",
            status=ModelVersion.Status.SHADOW,
            traffic_share=0,
            validation_scores=[j / 40 for j in range(40)],
        )
        reviewed_prediction(version, 0.1, "NORMAL", reviewer=radiologist)
    # Live agreement and drift for every row come from a fixed number of queries, not one (or more) per row.
    with django_assert_num_queries(len(two_versions.captured_queries)):
        page = staff_web.get(url("changelist")).content.decode()
    assert page.count("(n = 1)") == 10 and "0.500 (n = 2)" in page  # every row still shows its own figures


# --- Actions ----------------------------------------------------------------------------------------------------


def test_put_in_shadow_then_retire_are_audited_with_the_admin(
    staff_web: Client, admin_user: Any, active: ModelVersion, candidate: ModelVersion
) -> None:
    response = staff_web.post(url("action", candidate.pk, "shadow"))
    assert response.status_code == 302 and response["Location"] == url("change", candidate.pk)
    assert ModelVersion.objects.get(pk=candidate.pk).status == ModelVersion.Status.SHADOW
    assert audited("model.shadowed", "v-candidate").actor_id == admin_user.pk
    staff_web.post(url("action", candidate.pk, "retire"))
    assert ModelVersion.objects.get(pk=candidate.pk).status == ModelVersion.Status.RETIRED
    event = audited("model.retired", "v-candidate")
    assert (event.actor_id, event.client_ip) == (admin_user.pk, "127.0.0.1")


def test_activate_moves_all_traffic_and_retires_the_old_version(
    staff_web: Client, admin_user: Any, active: ModelVersion, candidate: ModelVersion
) -> None:
    response = staff_web.post(url("action", candidate.pk, "activate"), follow=True)
    assert "v-candidate is active and serves 100 % of new studies." in message_texts(response)
    candidate.refresh_from_db()
    active.refresh_from_db()
    assert (candidate.status, candidate.traffic_share) == (ModelVersion.Status.ACTIVE, 100)
    assert active.status == ModelVersion.Status.RETIRED
    assert audited("model.activated", "v-candidate").actor_id == admin_user.pk


def test_refusals_are_shown_as_messages_and_change_nothing(
    staff_web: Client, active: ModelVersion, uncalibrated: ModelVersion
) -> None:
    response = staff_web.post(url("action", uncalibrated.pk, "activate"), follow=True)
    assert any("no calibrated threshold" in text for text in message_texts(response))
    assert "no calibrated threshold" in response.content.decode()  # rendered on the version page
    response = staff_web.post(url("action", active.pk, "retire"), follow=True)
    assert any("only serving version" in text for text in message_texts(response))
    response = staff_web.post(
        url("action", active.pk, "calibrate-reviews"), {"target_sensitivity": "0.95"}, follow=True
    )
    assert any("Too few reviewed studies" in text for text in message_texts(response))
    response = staff_web.post(
        url("action", active.pk, "calibrate-reviews"), {"target_sensitivity": "lots"}, follow=True
    )
    assert any("must be a number" in text for text in message_texts(response))
    assert ModelVersion.objects.get(pk=uncalibrated.pk).status == ModelVersion.Status.REGISTERED
    assert ModelVersion.objects.get(pk=active.pk).status == ModelVersion.Status.ACTIVE
    assert not AuditEvent.objects.filter(action__in=["model.activated", "model.retired", "model.calibrated"]).exists()


def test_actions_need_post_and_a_known_name(staff_web: Client, active: ModelVersion) -> None:
    assert staff_web.get(url("action", active.pk, "retire")).status_code == 405
    assert staff_web.post(url("action", active.pk, "explode")).status_code == 404
    assert staff_web.post(url("change", active.pk)).status_code == 405  # the page itself is read-only


def test_calibrate_on_reviewed_studies_sets_an_audited_threshold(
    staff_web: Client, admin_user: Any, uncalibrated: ModelVersion, active: ModelVersion
) -> None:
    radiologist = RadiologistFactory()
    # The new version runs in shadow beside the active one on 24 reviewed studies (12 pneumonia, 12 normal).
    for i in range(12):
        study = reviewed_prediction(active, 0.9, "PNEUMONIA", reviewer=radiologist).study
        reviewed_prediction(uncalibrated, 0.40 + i / 100, "", study=study, is_shadow=True)
        study = reviewed_prediction(active, 0.1, "NORMAL", reviewer=radiologist).study
        reviewed_prediction(uncalibrated, 0.05 + i / 100, "", study=study, is_shadow=True)
    response = staff_web.post(
        url("action", uncalibrated.pk, "calibrate-reviews"), {"target_sensitivity": "0.9"}, follow=True
    )
    uncalibrated.refresh_from_db()
    assert uncalibrated.is_calibrated and uncalibrated.threshold_method["on"] == "reviewed studies"
    # The highest threshold keeping >= 90 % sensitivity on 12 pneumonias keeps 11: the 2nd lowest score, 0.41.
    assert uncalibrated.threshold == pytest.approx(0.41)
    assert any("calibrated on this hospital's reviewed studies" in text for text in message_texts(response))
    assert audited("model.calibrated", "v-new").actor_id == admin_user.pk
    assert "on reviewed studies" in response.content.decode()


def test_calibrate_on_a_folder_is_queued_for_the_training_worker(
    staff_web: Client, admin_user: Any, uncalibrated: ModelVersion, django_capture_on_commit_callbacks: Any
) -> None:
    # Queued only when the request's transaction commits (never straight from the view).
    with (
        mock.patch("diagnosis.tasks.lifecycle.model_version_calibrate_on_folder_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_web.post(
            url("action", uncalibrated.pk, "calibrate-folder"),
            {"data_dir": "/data/hospital-val", "target_sensitivity": "0.9"},
            follow=True,
        )
        staff_web.post(
            url("action", uncalibrated.pk, "calibrate-folder"),
            {"data_dir": "relative/val", "target_sensitivity": "0.9"},
        )
    delay.assert_called_once_with(uncalibrated.pk, "/data/hospital-val", 0.9, admin_user.pk)
    assert any("queued on the training worker" in text for text in message_texts(response))


# --- Register and traffic ---------------------------------------------------------------------------------------


def test_register_an_artifact_folder_checks_its_sha256_and_audits(
    staff_web: Client, admin_user: Any, validated_artifact: Path, tmp_path: Path
) -> None:
    response = staff_web.post(
        url("register"), {"path": str(validated_artifact), "version": "from-admin", "notes": "ward trial"}
    )
    version = ModelVersion.objects.get(version="from-admin")
    assert response["Location"] == url("change", version.pk)
    assert (version.status, version.notes, version.is_calibrated) == (
        ModelVersion.Status.REGISTERED,
        "ward trial",
        True,
    )
    assert audited("model.registered", "from-admin").actor_id == admin_user.pk

    tampered = tmp_path / "tampered"
    tampered.mkdir()
    manifest = json.loads((validated_artifact / "manifest.json").read_text())
    (tampered / "manifest.json").write_text(json.dumps({**manifest, "weights_sha256": "f" * 64}))
    (tampered / "model.keras").symlink_to(validated_artifact / "model.keras")
    response = staff_web.post(url("register"), {"path": str(tampered), "version": "tampered"})
    assert response.status_code == 200 and "does not match the sha256" in response.content.decode()
    response = staff_web.post(url("register"), {"path": "relative/folder"})
    assert "Give an absolute path." in response.content.decode()
    assert not ModelVersion.objects.filter(version="tampered").exists()


def test_register_a_notebook_h5_is_queued_for_a_worker(
    staff_web: Client, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        mock.patch("diagnosis.tasks.lifecycle.model_version_register_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_web.post(url("register"), {"path": "/models/best_model.h5", "version": "", "notes": ""})
    delay.assert_called_once_with("/models/best_model.h5", None, "", admin_user.pk)
    assert response["Location"] == url("changelist")


def test_set_traffic_splits_new_studies_and_refuses_shares_not_adding_up_to_100(
    staff_web: Client, admin_user: Any, active: ModelVersion, candidate: ModelVersion, uncalibrated: ModelVersion
) -> None:
    page = staff_web.get(url("traffic")).content.decode()
    assert f'name="share-{active.pk}"' in page and f'name="share-{candidate.pk}"' in page
    assert f'name="share-{uncalibrated.pk}"' not in page and "Cannot take traffic" in page
    response = staff_web.post(url("traffic"), {f"share-{active.pk}": "60", f"share-{candidate.pk}": "30"})
    assert any("add up to 100 %" in text for text in message_texts(response))
    assert ModelVersion.objects.get(pk=active.pk).traffic_share == 100
    response = staff_web.post(url("traffic"), {f"share-{active.pk}": "70", f"share-{candidate.pk}": "30"}, follow=True)
    assert any("Traffic set: v-active 70 %, v-candidate 30 %" in text for text in message_texts(response))
    assert ModelVersion.objects.get(pk=candidate.pk).traffic_share == 30
    event = AuditEvent.objects.get(action="model.traffic_changed")
    assert event.actor_id == admin_user.pk and event.details["new"] == {"v-active": 70, "v-candidate": 30}
    assert "model.traffic_changed" in staff_web.get(url("change", candidate.pk)).content.decode()


def test_ab_report_puts_versions_side_by_side_with_a_statement_and_drift(
    staff_web: Client, active: ModelVersion, candidate: ModelVersion
) -> None:
    candidate.status = ModelVersion.Status.SHADOW
    candidate.validation_scores = [0.5 + i / 100 for i in range(40)]
    candidate.save(update_fields=["status", "validation_scores"])
    radiologist = RadiologistFactory()
    for i in range(30):
        finding = "PNEUMONIA" if i % 2 else "NORMAL"
        study = reviewed_prediction(active, 0.8 if i % 2 else 0.2, finding, reviewer=radiologist).study
        reviewed_prediction(candidate, 0.1, "", study=study, is_shadow=True)  # shadow calls everything normal
    page = staff_web.get(url("ab_report")).content.decode()
    assert 'data-version="v-active"' in page and 'data-version="v-candidate"' in page
    assert "Significant difference." in page and "v-active is correct significantly more often" in page
    assert "drift-warning" in page and "v-candidate&#x27;s scores" in page
    assert "Performance on adults is not established" in page
