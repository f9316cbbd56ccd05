"""Calibrating a version's threshold: a value, on reviewed studies, on a labelled folder (ML boundary mocked)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from diagnosis.exceptions import ModelVersionError
from diagnosis.models import AuditEvent, ModelVersion
from diagnosis.services.calibration import (
    MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION,
    model_version_calibrate,
    model_version_calibrate_on_folder,
    model_version_calibrate_on_reviews,
)
from diagnosis.services.model_versions import model_version_set_traffic
from diagnosis.tasks.lifecycle import model_version_calibrate_on_folder_task
from mlcore.calibration import CalibrationResult
from tests.lifecycle.conftest import make_version

pytestmark = pytest.mark.django_db


def test_calibrate_stores_the_threshold_and_method_and_audits_old_and_new(v3: ModelVersion, admin: Any) -> None:
    imported = make_version("nb", calibrated=False)
    method = {"method": "target_sensitivity", "target": 0.95, "on": "labelled folder /x", "n": 412}
    version = model_version_calibrate(model_version=imported, threshold=0.27, method=method, actor=admin)
    assert version.threshold == 0.27 and version.threshold_method == method and version.is_calibrated
    (event,) = AuditEvent.objects.filter(action="model.calibrated")
    assert event.actor == admin and event.subject_id == "nb"
    assert (event.details["old_threshold"], event.details["new_threshold"]) == (0.5, 0.27)
    # Calibrated, it may now take traffic.
    assert [v.version for v in model_version_set_traffic(shares={"v3": 90, "nb": 10})] == ["v3", "nb"]


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5, math.nan, "abc"])
def test_calibrate_refuses_a_threshold_outside_0_1(v3: ModelVersion, threshold: Any) -> None:
    with pytest.raises(ModelVersionError, match="threshold must be"):
        model_version_calibrate(model_version=v3, threshold=threshold, method={"method": "manual"})
    assert not AuditEvent.objects.filter(action="model.calibrated").exists()


def _reviewed_population(
    reviewed_study: Callable[..., Any], serving: ModelVersion, shadow: ModelVersion, n: int = 60, seed: int = 4
) -> tuple[list[int], list[float]]:
    """Reviewed studies where ``shadow`` predicted in shadow; returns the shadow's truth and scores."""
    rng = np.random.default_rng(seed)
    truth = [int(t) for t in rng.integers(0, 2, n)]
    scores = [float(np.clip(rng.normal(0.35 + 0.3 * t, 0.15), 0.01, 0.99)) for t in truth]
    for t, s in zip(truth, scores, strict=True):
        reviewed_study("PNEUMONIA" if t else "NORMAL", {serving: 0.5}, shadow={shadow: s})
    return truth, scores


def test_calibrate_on_reviews_uses_shadow_predictions_and_the_target_sensitivity(
    v3: ModelVersion, reviewed_study: Callable[..., Any], admin: Any
) -> None:
    candidate = make_version("v4", status=ModelVersion.Status.SHADOW, calibrated=False)
    truth, scores = _reviewed_population(reviewed_study, v3, candidate)
    version = model_version_calibrate_on_reviews(model_version=candidate, target_sensitivity=0.9, actor=admin)

    _, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    expected = thresholds[np.argmax(tpr >= 0.9)]
    assert version.threshold == pytest.approx(expected)
    method = version.threshold_method
    assert method["on"] == "reviewed studies" and method["n"] == 60 and method["n_positive"] == sum(truth)
    predicted = np.asarray(scores) >= expected
    positives = np.asarray(truth) == 1
    assert method["achieved_sensitivity"] == pytest.approx(predicted[positives].mean())
    assert method["specificity"] == pytest.approx((~predicted[~positives]).mean())
    assert AuditEvent.objects.get(action="model.calibrated").actor == admin


def test_calibrate_on_reviews_takes_the_latest_review_as_truth(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    from diagnosis.models import Review

    candidate = make_version("v4", status=ModelVersion.Status.SHADOW, calibrated=False)
    truth, scores = _reviewed_population(reviewed_study, v3, candidate, n=30, seed=1)
    # Overrule one normal study with the highest score: the latest review says pneumonia.
    index = max((i for i, t in enumerate(truth) if t == 0), key=lambda i: scores[i])
    study = candidate.predictions.get(probability=scores[index]).study
    Review.objects.create(study=study, reviewer=study.reviews.get().reviewer, finding="PNEUMONIA")
    truth[index] = 1
    version = model_version_calibrate_on_reviews(model_version=candidate, target_sensitivity=0.8)
    _, tpr, thresholds = roc_curve(truth, scores, drop_intermediate=False)
    assert version.threshold == pytest.approx(thresholds[np.argmax(tpr >= 0.8)])
    assert version.threshold_method["n_positive"] == sum(truth)


def test_calibrate_on_reviews_refuses_with_too_few_reviewed_studies(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    candidate = make_version("v4", status=ModelVersion.Status.SHADOW, calibrated=False)
    for i in range(12):
        reviewed_study("PNEUMONIA" if i % 2 else "NORMAL", {v3: 0.5}, shadow={candidate: 0.1 + i / 20})
    reviewed_study(None, {v3: 0.5}, shadow={candidate: 0.9})  # not reviewed: does not count
    with pytest.raises(ModelVersionError, match=r"predictions on 12 reviewed studies \(6 pneumonia, 6 normal\)"):
        model_version_calibrate_on_reviews(model_version=candidate)
    assert not ModelVersion.objects.get(pk=candidate.pk).is_calibrated


def test_calibrate_on_reviews_refuses_when_a_finding_is_rare(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    candidate = make_version("v4", status=ModelVersion.Status.SHADOW, calibrated=False)
    for i in range(40):
        finding = "PNEUMONIA" if i < MIN_REVIEWED_PER_CLASS_FOR_CALIBRATION - 1 else "NORMAL"
        reviewed_study(finding, {v3: 0.5}, shadow={candidate: 0.5})
    with pytest.raises(ModelVersionError, match="at least 5 of each finding"):
        model_version_calibrate_on_reviews(model_version=candidate)


@pytest.fixture
def artifact_version(tmp_path: Path) -> ModelVersion:
    """An uncalibrated version whose model.keras exists (its sha256 is checked before calibrating)."""
    from mlcore.artifact import file_sha256

    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"weights")
    version = make_version("nb", calibrated=False, validated=False)
    ModelVersion.objects.filter(pk=version.pk).update(path=str(folder), sha256=file_sha256(folder / "model.keras"))
    version.refresh_from_db()
    return version


def _fake_folder_calibration(monkeypatch: pytest.MonkeyPatch, per_class: int) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def fake(artifact_dir: Any, data_dir: Any, target: float) -> CalibrationResult:
        calls.append((artifact_dir, data_dir, target))
        return CalibrationResult(
            threshold=0.23,
            n=2 * per_class,
            n_positive=per_class,
            n_negative=per_class,
            achieved_sensitivity=0.96,
            specificity=0.7,
            auc=0.9,
            target_sensitivity=target,
            scores=(0.1, 0.9),
        )

    monkeypatch.setattr("mlcore.calibration.calibrate_on_folder", fake)
    return calls


def test_calibrate_on_folder_validates_the_version_and_sets_a_drift_baseline(
    artifact_version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: Any
) -> None:
    calls = _fake_folder_calibration(monkeypatch, per_class=25)
    version = model_version_calibrate_on_folder(
        model_version=artifact_version, data_dir=tmp_path, actor=admin, target_sensitivity=0.95
    )
    assert calls == [(artifact_version.path, tmp_path.resolve(), 0.95)]
    assert version.threshold == 0.23 and version.is_calibrated and version.validated
    assert version.threshold_method["on"] == f"labelled folder {tmp_path.resolve()}"
    assert version.validation_scores == [0.1, 0.9]
    assert AuditEvent.objects.get(action="model.calibrated").details["validated"] == {"old": False, "new": True}


def test_calibrate_on_a_small_folder_leaves_the_version_unvalidated(
    artifact_version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_folder_calibration(monkeypatch, per_class=6)
    version = model_version_calibrate_on_folder(model_version=artifact_version, data_dir=tmp_path)
    assert version.is_calibrated and not version.validated


def test_an_untrained_demo_model_stays_unvalidated_however_much_data_calibrates_it(
    artifact_version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcore.artifact import DEMO_NOTE

    ModelVersion.objects.filter(pk=artifact_version.pk).update(manifest={"training": {"note": DEMO_NOTE}})
    artifact_version.refresh_from_db()
    _fake_folder_calibration(monkeypatch, per_class=500)
    version = model_version_calibrate_on_folder(model_version=artifact_version, data_dir=tmp_path)
    assert version.is_calibrated and not version.validated


def test_calibrate_on_folder_refuses_weights_changed_since_registration(
    artifact_version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_folder_calibration(monkeypatch, per_class=25)
    Path(artifact_version.path, "model.keras").write_bytes(b"other weights")
    with pytest.raises(ModelVersionError, match="does not match the registered sha256"):
        model_version_calibrate_on_folder(model_version=artifact_version, data_dir=tmp_path)
    assert calls == []


def test_the_calibration_task_calibrates_as_the_admin_who_asked(
    artifact_version: ModelVersion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: Any
) -> None:
    _fake_folder_calibration(monkeypatch, per_class=25)
    result = model_version_calibrate_on_folder_task.delay(artifact_version.pk, str(tmp_path), 0.95, admin.pk).get()
    assert result == {"ok": True, "version": "nb", "threshold": 0.23}
    assert AuditEvent.objects.get(action="model.calibrated").actor == admin


def test_a_refused_calibration_task_leaves_the_reason_in_the_audit_log(
    artifact_version: ModelVersion, tmp_path: Path, admin: Any
) -> None:
    result = model_version_calibrate_on_folder_task.delay(
        artifact_version.pk, str(tmp_path / "missing"), 0.95, admin.pk
    ).get()
    assert result["ok"] is False and "is not a folder" in result["error"]
    event = AuditEvent.objects.get(action="model.calibration_failed")
    assert event.actor == admin and event.subject_id == "nb" and "is not a folder" in event.details["reason"]


def test_lifecycle_tasks_are_routed_to_the_training_queue() -> None:
    from django.conf import settings

    from pneumoweb.celery import app

    assert settings.CELERY_TASK_ROUTES[model_version_calibrate_on_folder_task.name] == {"queue": "training"}
    assert model_version_calibrate_on_folder_task.name in app.tasks
