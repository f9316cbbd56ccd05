"""`train_model` and `evaluate_model` end to end on a tiny synthetic dataset (real TensorFlow, weights=None)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from diagnosis.models import AuditEvent, ModelVersion
from tests.mlcore.helpers_ml import write_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_train_model_writes_a_loadable_artifact_and_registers_an_active_version(tmp_path: Path) -> None:
    from mlcore.artifact import load_artifact

    data = write_dataset(tmp_path / "chest_xray", n_train=14, seed=1)
    out = io.StringIO()
    call_command(
        "train_model",
        "--data-dir",
        str(data),
        "--image-size",
        "32",
        "--weights",
        "none",
        "--phase1-epochs",
        "1",
        "--phase2-epochs",
        "1",
        "--batch-size",
        "4",
        "--version",
        "tiny-v1",
        "--output",
        str(tmp_path / "models"),
        "--activate",
        stdout=out,
    )
    printed = out.getvalue()
    assert "[" in printed and "epoch 1/1" in printed and "img/s" in printed  # progress per epoch with the pace
    assert "carved from train" in printed  # no val folder: the run says where validation came from
    version = ModelVersion.objects.get(version="tiny-v1")
    # The validation line names the population the artifact records (pediatric for the Kermany default).
    population = load_artifact(version.path).manifest.population
    assert "pediatric" in population.lower() and f"Validation ({population}): AUC" in printed

    assert version.status == ModelVersion.Status.ACTIVE and version.traffic_share == 100
    artifact = load_artifact(version.path)
    assert version.sha256 == artifact.manifest.weights_sha256
    assert version.threshold == pytest.approx(artifact.manifest.threshold)
    assert version.preprocessing["clahe_clip_limit"] == 2.0 and version.image_size == 32
    assert version.metrics["auc_roc"] is not None
    assert Path(version.path, "plots").is_dir() and any(Path(version.path, "plots").glob("*.png"))
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"model.registered", "model.activated"}

    report_dir = tmp_path / "eval"
    out = io.StringIO()
    call_command(
        "evaluate_model",
        "--version",
        "tiny-v1",
        "--data-dir",
        str(data / "train"),
        "--output",
        str(report_dir),
        stdout=out,
    )
    report = json.loads((report_dir / "report.json").read_text())
    assert report["report"]["n"] == 28 and len(report["per_image"]) == 28
    assert "AUC-ROC" in out.getvalue()
    assert any(report_dir.glob("*.png"))


def test_train_model_refuses_a_folder_without_train(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="train/"):
        call_command("train_model", "--data-dir", str(tmp_path), stdout=io.StringIO())


def test_evaluate_model_names_the_registered_versions_when_one_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No model version 'nope'"):
        call_command("evaluate_model", "--version", "nope", "--data-dir", str(tmp_path), stdout=io.StringIO())
