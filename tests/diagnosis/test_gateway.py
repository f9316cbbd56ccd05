"""diagnosis.ml, the one gateway to mlcore: error mapping, the shared rules, the weights check before any run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from diagnosis import ml
from diagnosis.exceptions import (
    ModelArtifactError,
    ModelVersionError,
    UnreadableImageError,
    UnsupportedMediaError,
    UploadTooLargeError,
)
from tests.factories import ModelVersionFactory, png_bytes


def test_upload_refusals_become_the_domain_errors_the_api_answers_with() -> None:
    with pytest.raises(UnsupportedMediaError):
        ml.inspect_upload(b"<html>not an image</html>", max_pixels=10_000)
    with pytest.raises(UploadTooLargeError):
        ml.inspect_upload(png_bytes(), max_pixels=4)
    with pytest.raises(UnreadableImageError):
        ml.inspect_upload(png_bytes()[:40], max_pixels=10_000)  # a PNG cut inside its header
    assert ml.inspect_upload(png_bytes(), max_pixels=10_000).header.format == "png"


def test_a_refused_calibration_keeps_mlcores_reason() -> None:
    with pytest.raises(ModelVersionError, match="target"):
        ml.calibrate_scores([0, 1], [0.2, 0.8], 0.0)


@pytest.mark.parametrize("target", [0.5, 0.95, 0.999])
def test_one_target_sensitivity_rule_accepts(target: float) -> None:
    assert ml.check_target_sensitivity(target) == target


@pytest.mark.parametrize("target", [0.0, 0.49, 1.0, 1.5, float("nan"), "x"])
def test_one_target_sensitivity_rule_refuses(target: Any) -> None:
    with pytest.raises(ValueError):
        ml.check_target_sensitivity(target)


@pytest.mark.django_db
def test_verify_weights_refuses_weights_that_are_not_the_registered_ones(tmp_path: Path) -> None:
    (tmp_path / "model.keras").write_bytes(b"registered weights")
    version = ModelVersionFactory(path=str(tmp_path), sha256=hashlib.sha256(b"registered weights").hexdigest())
    ml.verify_weights(version)
    (tmp_path / "model.keras").write_bytes(b"other weights, longer")
    with pytest.raises(ModelArtifactError, match="does not match the registered sha256"):
        ml.verify_weights(version)
    (tmp_path / "model.keras").unlink()
    with pytest.raises(ModelArtifactError, match="cannot be read"):
        ml.verify_weights(version)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_version_whose_weights_changed_is_refused_before_its_model_runs(
    demo_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcore.inference import Predictor

    runs: list[str] = []
    monkeypatch.setattr(Predictor, "warm_up", lambda self: runs.append("warm_up"))
    ml.reset_caches()
    tampered = ModelVersionFactory(version="other-weights", path=str(demo_artifact), sha256="f" * 64)
    with pytest.raises(ModelArtifactError, match="do not match the registered sha256"):
        ml.predictor_for(tampered)
    assert runs == []  # refused before warm-up: the wrong model never ran, not even on a blank image
    ml.reset_caches()
