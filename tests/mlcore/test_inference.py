"""mlcore.inference.Predictor on an untrained demo artifact (32 px)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("keras")

import mlcore.inference as inference
from mlcore.config import PreprocessingConfig
from mlcore.errors import ImageError
from mlcore.inference import InferenceResult, Predictor
from mlcore.preprocessing import preprocess_file
from tests.mlcore.helpers_ml import demo_artifact, png_bytes, synthetic_xray


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_artifact(demo_artifact(tmp_path_factory, 32))


@pytest.fixture(scope="module")
def image():
    return synthetic_xray(np.random.default_rng(0), label=1, shape=(60, 90))


def _decode(png: bytes, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), flags)


def test_predict_fields(predictor, image):
    result = predictor.predict(png_bytes(image))
    assert isinstance(result, InferenceResult)
    assert 0.0 <= result.probability <= 1.0
    assert result.threshold == 0.5
    assert result.label == ("PNEUMONIA" if result.probability >= 0.5 else "NORMAL")
    assert result.heatmap.shape == (1, 1) and result.heatmap.dtype == np.float32
    assert _decode(result.heatmap_png).shape == (60, 90, 3)  # original resolution
    assert _decode(result.overlay_png).shape == (60, 90, 3)
    np.testing.assert_array_equal(_decode(result.image_png), image)
    np.testing.assert_array_equal(result.loaded.pixels, image)
    assert result.loaded.format == "png"
    assert result.preprocessing == PreprocessingConfig(image_size=32).to_dict()
    assert result.model_version == "demo-untrained"
    assert result.inference_ms > 0


def test_threshold_override(predictor, image):
    data = png_bytes(image)
    assert predictor.predict(data, threshold=0.0).label == "PNEUMONIA"
    assert predictor.predict(data, threshold=1.0).label == (
        "PNEUMONIA" if predictor.predict(data).probability >= 1.0 else "NORMAL"
    )
    with pytest.raises(ValueError, match="threshold"):
        predictor.predict(data, threshold=1.5)


def test_model_input_is_preprocess_file_output(predictor, image, tmp_path, monkeypatch):
    """Safety property: inference feeds the model exactly what training computed."""
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(image))
    seen = []
    original = inference.predict_with_gradcam

    def spy(model, batch, **kwargs):
        seen.append(np.array(batch))
        return original(model, batch, **kwargs)

    monkeypatch.setattr(inference, "predict_with_gradcam", spy)
    result = predictor.predict(path.read_bytes())
    expected = preprocess_file(path, predictor.preprocessing)
    assert len(seen) == 1 and seen[0].shape == (1, 32, 32, 3)
    np.testing.assert_allclose(seen[0][0], expected, atol=1e-6)
    direct = predictor.model.predict(expected[None], verbose=0)[0, 0]
    assert result.probability == pytest.approx(float(direct), abs=1e-5)


def test_predict_batch_matches_single(predictor, image):
    other = synthetic_xray(np.random.default_rng(1), label=0, shape=(64, 48))
    results = predictor.predict_batch([png_bytes(image), png_bytes(other)])
    assert [r.loaded.pixels.shape for r in results] == [(60, 90), (64, 48)]
    assert results[1].probability == pytest.approx(predictor.predict(png_bytes(other)).probability, abs=1e-5)


def test_bad_image_raises_image_error(predictor):
    with pytest.raises(ImageError):
        predictor.predict(b"GIF89a not a radiograph")
    with pytest.raises(ImageError):
        predictor.predict(b"")


def test_a_12_bit_dicom_gets_a_16_bit_rendition_and_every_result_its_activation_map(predictor, make_dicom):
    # Issue 10: the viewer windows the original bit depth and colours the raw activations itself.
    stored = np.random.default_rng(1).integers(100, 4000, size=(48, 64), dtype=np.uint16)
    result = predictor.predict(make_dicom(stored, bits_stored=12))
    assert result.rendition is not None
    np.testing.assert_array_equal(result.rendition.samples.astype(np.int64) + int(result.rendition.intercept), stored)
    activation = _decode(result.activation_png)
    assert activation.dtype == np.uint8 and activation.shape == result.heatmap.shape
    np.testing.assert_array_equal(activation, np.floor(result.heatmap * 255 + 0.5).astype(np.uint8))
    png_result = predictor.predict(png_bytes(synthetic_xray(np.random.default_rng(2), label=0)))
    assert png_result.rendition is None and png_result.activation_png
