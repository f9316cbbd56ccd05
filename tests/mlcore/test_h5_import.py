"""Wrapping a Keras .h5 of the original training notebook into a model artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcore.errors import ArtifactError
from tests.mlcore.helpers_ml import png_bytes, synthetic_xray

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def notebook_h5(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A model with the notebook's structure saved the way the notebook did (legacy HDF5), and the model itself."""
    from mlcore.model import build_classifier

    model = build_classifier(image_size=32, weights=None, seed=1)
    path = tmp_path_factory.mktemp("notebook") / "resnet50_final_best.h5"
    model.save(path)
    return path, model


def test_keras_writes_the_notebook_format_for_h5(notebook_h5: tuple[Path, object]) -> None:
    import h5py

    path, _ = notebook_h5
    with h5py.File(path, "r") as handle:  # legacy HDF5 whole-model file, not the Keras 3 zip format
        assert "model_config" in handle.attrs and "model_weights" in handle


def test_wrapped_h5_predicts_like_the_original_model(notebook_h5: tuple[Path, object], tmp_path: Path) -> None:
    from mlcore.artifact import file_sha256, load_artifact
    from mlcore.config import PreprocessingConfig
    from mlcore.h5_import import wrap_h5_model
    from mlcore.inference import Predictor
    from mlcore.preprocessing import preprocess_bytes

    path, original = notebook_h5
    manifest = wrap_h5_model(path, tmp_path / "nb-final", version="nb-final")

    assert manifest.version == "nb-final" and manifest.image_size == 32
    assert manifest.preprocessing == PreprocessingConfig(image_size=32).to_dict()  # the spec's CLAHE pipeline
    assert manifest.threshold == 0.5 and manifest.threshold_method["method"] == "uncalibrated"
    assert "resnet50_final_best.h5" in manifest.threshold_method["note"]
    assert manifest.validated is False and "Kermany" in manifest.population
    assert manifest.dataset == {
        "source": "original training notebook",
        "file": "resnet50_final_best.h5",
        "sha256": file_sha256(path),
    }

    loaded = load_artifact(tmp_path / "nb-final")  # sha256 verified, Grad-CAM layer present
    image = png_bytes(synthetic_xray(np.random.default_rng(0), label=1))
    batch, _ = preprocess_bytes(image, PreprocessingConfig(image_size=32))
    expected = float(np.asarray(original(batch[None], training=False))[0, 0])
    assert float(np.asarray(loaded.model(batch[None], training=False))[0, 0]) == pytest.approx(expected, abs=1e-6)
    assert Predictor.from_artifact(tmp_path / "nb-final").predict(image).probability == pytest.approx(
        expected, abs=1e-6
    )


def test_an_h5_without_resnet50s_last_block_is_refused(tmp_path: Path) -> None:
    import keras

    from mlcore.h5_import import wrap_h5_model

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    path = tmp_path / "other.h5"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ArtifactError, match="conv5_block3_out"):
        wrap_h5_model(path, tmp_path / "out", version="other")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_h5_with_a_softmax_or_wrong_output_is_refused(tmp_path: Path) -> None:
    import keras

    from mlcore.h5_import import wrap_h5_model

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    path = tmp_path / "two.h5"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ArtifactError, match=r"\(None, 1\)"):
        wrap_h5_model(path, tmp_path / "out", version="two")


def test_weights_only_and_non_hdf5_files_are_refused_before_keras_runs(tmp_path: Path) -> None:
    import h5py

    from mlcore.h5_import import wrap_h5_model

    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as handle:
        handle.create_group("model_weights")
    with pytest.raises(ArtifactError, match="weights only"):
        wrap_h5_model(weights_only, tmp_path / "a", version="a")
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"PK\x03\x04 not hdf5")
    with pytest.raises(ArtifactError, match="not an HDF5 file"):
        wrap_h5_model(fake, tmp_path / "b", version="b")
