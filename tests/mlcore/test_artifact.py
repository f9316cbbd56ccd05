"""mlcore.artifact: manifest round trip, sha256 verification, demo artifact."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from mlcore.artifact import (
    MANIFEST_FILE,
    MODEL_FILE,
    Manifest,
    file_sha256,
    git_revision,
    load_artifact,
    read_manifest,
    save_artifact,
)
from mlcore.config import PreprocessingConfig
from mlcore.errors import ArtifactError
from tests.mlcore.helpers_ml import demo_artifact


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_artifact(tmp_path_factory, 32)


@pytest.fixture
def demo_copy(demo, tmp_path):
    target = tmp_path / "artifact"
    shutil.copytree(demo, target)
    return target


def test_demo_manifest(demo):
    manifest = read_manifest(demo)
    assert manifest.version == "demo-untrained"
    assert manifest.validated is False
    assert manifest.threshold == 0.5
    assert manifest.threshold_method["method"] == "uncalibrated"
    assert "not for clinical use" in manifest.threshold_method["note"]
    assert manifest.image_size == 32 and manifest.preprocessing["image_size"] == 32
    assert PreprocessingConfig.from_dict(manifest.preprocessing) == PreprocessingConfig(image_size=32)
    assert manifest.weights_sha256 == file_sha256(demo / MODEL_FILE)
    assert manifest.class_names == ["NORMAL", "PNEUMONIA"] and manifest.model_format == "keras"
    assert manifest.created.endswith("+00:00")
    assert read_manifest(demo / MANIFEST_FILE) == manifest
    assert Manifest.from_dict(json.loads((demo / MANIFEST_FILE).read_text())) == manifest


def test_load_artifact(demo):
    loaded = load_artifact(demo)
    assert loaded.manifest == read_manifest(demo)
    out = loaded.model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)
    assert out.shape == (1, 1)


def test_flipped_byte_is_refused(demo_copy):
    path = demo_copy / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(demo_copy)


def test_missing_model_file_is_refused(demo_copy):
    (demo_copy / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(demo_copy)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.pop("threshold"), "lacks fields: threshold"),
        (lambda m: m.update(threshold=1.5), "outside"),
        (lambda m: m.update(schema_version=99), "schema_version"),
        (lambda m: m.update(class_names=["PNEUMONIA", "NORMAL"]), "class_names"),
        (lambda m: m.update(validated="yes"), "boolean"),
        (lambda m: m["preprocessing"].update(clahe_clip_limit=-1), "preprocessing is invalid"),
        (lambda m: m["preprocessing"].pop("interpolation"), "preprocessing is invalid"),
        (lambda m: m.update(image_size=64), "image_size"),
    ],
)
def test_bad_manifest_is_refused(demo_copy, edit, match):
    data = json.loads((demo_copy / MANIFEST_FILE).read_text())
    edit(data)
    (demo_copy / MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=match):
        load_artifact(demo_copy)


def test_unreadable_or_missing_manifest(tmp_path):
    with pytest.raises(ArtifactError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        read_manifest(tmp_path)


def test_save_artifact_checks_inputs(demo, tmp_path):
    model = load_artifact(demo).model
    args = {
        "version": "v",
        "preprocessing": PreprocessingConfig(image_size=32).to_dict(),
        "threshold": 0.3,
        "threshold_method": {"method": "uncalibrated"},
        "validated": False,
        "validation_metrics": None,
        "test_metrics": None,
        "dataset": {},
        "training": {},
        "population": "test",
        "code_revision": "abc",
    }
    with pytest.raises(ValueError, match="threshold"):
        save_artifact(model, tmp_path / "a", **{**args, "threshold": 1.2})
    with pytest.raises(ValueError, match="image_size"):
        save_artifact(model, tmp_path / "b", **{**args, "preprocessing": PreprocessingConfig(image_size=64).to_dict()})


def test_git_revision_outside_a_repository(tmp_path):
    assert git_revision(tmp_path) == "unknown"


def test_weights_are_hashed_once_per_version_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register, calibrate, load and /readyz all check model.keras: one read per version of the file."""
    import mlcore.artifact as artifact

    reads: list[str] = []
    real = artifact.file_sha256
    monkeypatch.setattr(artifact, "file_sha256", lambda path, **kw: reads.append(str(path)) or real(path, **kw))
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"weights v1")
    first = artifact.weights_sha256(weights)
    assert artifact.weights_sha256(weights) == first == hashlib.sha256(b"weights v1").hexdigest()
    assert len(reads) == 1
    weights.write_bytes(b"weights v2")  # same size, rewritten in place: a new identity, hashed again
    assert artifact.weights_sha256(weights) == hashlib.sha256(b"weights v2").hexdigest()
    assert len(reads) == 2
