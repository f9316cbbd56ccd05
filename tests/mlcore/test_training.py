"""End-to-end training on a tiny synthetic dataset (32 px, random init, 1 epoch per phase)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("keras")

from mlcore.artifact import MODEL_FILE, load_artifact, read_manifest
from mlcore.errors import ArtifactError
from mlcore.training import train
from mlcore.training_config import TrainConfig
from mlcore.training_progress import TrainingCancelled
from tests.mlcore.helpers_ml import write_dataset

pytestmark = pytest.mark.slow


def _config(tmp_path, **overrides) -> TrainConfig:
    values = {
        "data_dir": str(tmp_path / "ds"),
        "output_dir": str(tmp_path / "out"),
        "image_size": 32,
        "weights": None,
        "batch_size": 4,
        "phase1_epochs": 1,
        "phase2_epochs": 1,
        "n_bootstrap": 20,
        "version": "tiny",
        "population": "synthetic test images",
    }
    return TrainConfig(**{**values, **overrides})


def test_train_produces_loadable_artifact(tmp_path):
    write_dataset(tmp_path / "ds", n_train=10, n_test=2)
    events = []
    result = train(_config(tmp_path), progress=events.append)

    assert [(e.phase, e.epoch, e.epochs) for e in events] == [(1, 1, 1), (2, 1, 1)]
    assert all(e.seconds_per_epoch > 0 and e.images_per_second > 0 and e.val_auc is not None for e in events)

    folder = result.artifact_dir
    assert folder == tmp_path / "out" / "tiny"
    assert not (tmp_path / "out" / ".tiny.partial").exists()
    assert (folder / "checkpoints" / "phase1_best.keras").is_file()
    assert (folder / "checkpoints" / "phase2_best.keras").is_file()
    manifest = read_manifest(folder)
    assert manifest == result.manifest
    assert 0.0 <= manifest.threshold <= 1.0
    assert manifest.threshold_method["method"] == "target_sensitivity"
    assert manifest.threshold_method["on"] == "validation"
    assert manifest.validation_metrics["sensitivity"] >= 0.95  # reached on validation by construction
    assert manifest.validated is False  # 2-3 validation images per class < min_val_per_class
    assert manifest.test_metrics is not None and manifest.test_metrics["n"] == 4
    assert manifest.dataset["val_source"].startswith("carved from train")
    assert manifest.training["config"]["image_size"] == 32
    assert set(manifest.training["history"]) == {"phase1", "phase2"}
    assert manifest.population == "synthetic test images"
    assert result.validation.threshold == manifest.threshold and result.test is not None

    for name in ("validation_roc", "validation_gradcam", "test_confusion_matrix", "training_history"):
        assert (folder / "plots" / f"{name}.png").stat().st_size > 0, name
    evaluation = json.loads((folder / "evaluation" / "validation.json").read_text())
    assert len(evaluation["per_image"]) == result.validation.n

    loaded = load_artifact(folder)
    assert loaded.manifest.version == "tiny"

    with pytest.raises(FileExistsError):  # never overwrite an artifact
        train(_config(tmp_path))

    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[-100] ^= 0xFF
    (folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError):
        load_artifact(folder)


def test_should_stop_cancels_without_artifact(tmp_path):
    write_dataset(tmp_path / "ds", n_train=10)
    events = []
    with pytest.raises(TrainingCancelled):
        train(_config(tmp_path, phase1_epochs=3, version="cancelled"), progress=events.append, should_stop=lambda: True)
    assert len(events) == 1  # stopped at the end of the first epoch
    assert not (tmp_path / "out" / "cancelled").exists()
    assert not (tmp_path / "out" / ".cancelled.partial").exists()
