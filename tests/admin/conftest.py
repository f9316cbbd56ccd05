"""Admin fixtures: a logged-in staff client, model files in a temporary folder, one real tiny artifact per session.

The artifact is made by ``mlcore.artifact.create_demo_artifact`` in a subprocess, so TensorFlow never loads in the
test process (the web process never imports it either); registering it runs the real register service.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.factories import png_bytes

ROOT = Path(__file__).resolve().parents[2]
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture(autouse=True)
def _model_dir(settings: Any, tmp_path: Path) -> Path:
    """New artifacts (training runs) go to a temporary folder, never the project's var/models."""
    settings.PNEUMO_MODEL_DIR = tmp_path / "models"
    return settings.PNEUMO_MODEL_DIR


@pytest.fixture(scope="session")
def validated_artifact(demo_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo weights dressed as a trained model: calibrated threshold, validation metrics with CIs, plots.

    ``model.keras`` is hard-linked (100 MB), so its sha256, and the manifest's, still match.
    """
    out = tmp_path_factory.mktemp("artifacts") / "resnet50-v7"
    (out / "evaluation").mkdir(parents=True)
    (out / "plots").mkdir()
    try:
        os.link(demo_artifact / "model.keras", out / "model.keras")
    except OSError:
        shutil.copy2(demo_artifact / "model.keras", out / "model.keras")
    manifest = json.loads((demo_artifact / "manifest.json").read_text())
    manifest.update(
        version="resnet50-v7",
        threshold=0.3125,
        validated=True,
        population="Kermany pediatric chest X-rays, ages 1–5",
        threshold_method={
            "method": "target_sensitivity",
            "target": 0.95,
            "on": "validation",
            "n": 400,
            "val_source": "carved from train (15 %)",
            "achieved_sensitivity": 0.955,
            "achieved_specificity": 0.81,
        },
        validation_metrics=VALIDATION_METRICS,
        dataset={"splits": {"train": 4400, "val": 400, "test": 624}},
        training={
            "config": {
                "image_size": 32,
                "weights": "imagenet",
                "phase1_epochs": 15,
                "phase2_epochs": 20,
                "batch_size": 32,
            },
            "selected_phase": 2,
            "best_val_auc_during_training": 0.981,
            "duration_s": 5400.0,
        },
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    per_image = [
        {"path": f"val/{i}.png", "label": i % 2, "probability": round((i % 10) / 10 + 0.05, 2)} for i in range(40)
    ]
    (out / "evaluation" / "validation.json").write_text(json.dumps({"per_image": per_image}))
    (out / "plots" / "roc_curve.png").write_bytes(png_bytes(120, 90))
    (out / "plots" / "confusion_matrix.png").write_bytes(png_bytes(90, 90))
    (out / "secret.txt").write_text("not a plot")
    return out


VALIDATION_METRICS = {
    "n": 400,
    "n_positive": 200,
    "n_negative": 200,
    "threshold": 0.3125,
    "auc_roc": 0.9731,
    "pr_auc": 0.9702,
    "accuracy": 0.8825,
    "sensitivity": 0.955,
    "specificity": 0.81,
    "precision": 0.834,
    "f1": 0.8904,
    "confusion_matrix": {"tn": 162, "fp": 38, "fn": 9, "tp": 191},
    "ci95": {
        "auc_roc": [0.958, 0.986],
        "sensitivity": [0.925, 0.98],
        "specificity": [0.755, 0.862],
        "pr_auc": [0.95, 0.985],
        "accuracy": [0.85, 0.91],
        "precision": [0.79, 0.875],
        "f1": [0.86, 0.918],
    },
    "n_bootstrap": 1000,
}


@pytest.fixture
def staff_web(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user, backend=MODEL_BACKEND)
    return client


def reviewed_prediction(
    version: Any, probability: float, finding: str, *, study: Any = None, is_shadow: bool = False, reviewer: Any = None
) -> Any:
    """A prediction of ``version`` on a completed study, and a radiologist's review of that study (if ``finding``)."""
    from tests.factories import PredictionFactory, ReviewFactory

    if study is None:
        prediction = PredictionFactory(
            study__model_version=version,
            model_version=version,
            probability=probability,
            is_shadow=is_shadow,
            heatmap="",
            overlay="",
        )
        study = prediction.study
    else:
        prediction = PredictionFactory(
            study=study, model_version=version, probability=probability, is_shadow=is_shadow, heatmap="", overlay=""
        )
    if finding:
        extra = {"reviewer": reviewer} if reviewer is not None else {}
        ReviewFactory(
            study=study,
            finding=finding,
            prediction=None if is_shadow else prediction,
            agrees_with_model=prediction.label == finding,
            **extra,
        )
    return prediction
