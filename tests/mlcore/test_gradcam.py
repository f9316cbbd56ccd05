"""mlcore.gradcam: one-pass Grad-CAM against the two-pass keras-io reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from mlcore import gradcam  # noqa: E402
from mlcore.gradcam import (  # noqa: E402
    heatmap_to_png,
    make_gradcam_heatmap,
    overlay_heatmap,
    predict_with_gradcam,
    rgb_to_png,
)
from mlcore.model import LAST_CONV_LAYER, build_classifier  # noqa: E402

SIZE = 64  # conv5 output is 2 x 2


@pytest.fixture(scope="module")
def model():
    return build_classifier(image_size=SIZE, weights=None, seed=1)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).random((3, SIZE, SIZE, 3), dtype=np.float32)


def small_model(kernel_sign: float) -> keras.Model:
    """Conv (ReLU, non-negative maps) -> GAP -> Dense(1) with a constant-sign kernel."""
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(
        4, 3, padding="same", activation="relu", name="conv", kernel_initializer="ones", bias_initializer="ones"
    )(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(
        1, activation="sigmoid", kernel_initializer=keras.initializers.Constant(kernel_sign), name="prediction"
    )(x)
    return keras.Model(inputs, outputs)


def keras_io_reference(model, image, layer):
    """Two-pass Grad-CAM as in the keras-io example (one image)."""
    grad_model = keras.Model(model.inputs[0], [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        conv, preds = grad_model(image[None], training=False)
        score = preds[:, 0]
    grads = tape.gradient(score, conv)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.squeeze(conv[0] @ pooled[..., tf.newaxis])
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy()


def test_shapes_and_range(model, batch):
    probs, heatmaps = predict_with_gradcam(model, batch)
    assert probs.shape == (3,) and probs.dtype == np.float32
    assert heatmaps.shape == (3, 2, 2) and heatmaps.dtype == np.float32
    assert np.all((heatmaps >= 0) & (heatmaps <= 1))
    assert np.all((probs >= 0) & (probs <= 1))


def test_probability_equals_model_predict(model, batch):
    probs, _ = predict_with_gradcam(model, batch)
    np.testing.assert_allclose(probs, model.predict(batch, verbose=0)[:, 0], atol=1e-5)


def test_heatmaps_match_per_image_reference(batch):
    # A 128 px model gives 4 x 4 maps: enough structure for a meaningful comparison.
    model = build_classifier(image_size=128, weights=None, seed=2)
    images = np.random.default_rng(5).random((2, 128, 128, 3), dtype=np.float32)
    _, heatmaps = predict_with_gradcam(model, images)
    for image, heatmap in zip(images, heatmaps, strict=True):
        reference = keras_io_reference(model, image, LAST_CONV_LAYER)
        if np.isfinite(reference).all():
            np.testing.assert_allclose(heatmap, reference, atol=1e-4)
    np.testing.assert_allclose(
        make_gradcam_heatmap(images[1:], model, last_conv_layer_name=LAST_CONV_LAYER), heatmaps[1], atol=1e-4
    )  # batch size changes oneDNN rounding


def test_zero_max_guard_gives_zeros_not_nan():
    images = np.random.default_rng(1).random((2, 16, 16, 1), dtype=np.float32)
    # Negative kernel: every gradient is negative on non-negative maps -> CAM <= 0 -> ReLU 0.
    _, heatmaps = predict_with_gradcam(small_model(-1.0), images, last_conv_layer_name="conv")
    assert np.all(heatmaps == 0) and not np.isnan(heatmaps).any()
    _, heatmaps = predict_with_gradcam(small_model(0.0), images, last_conv_layer_name="conv")
    assert np.all(heatmaps == 0)
    # Explaining NORMAL (class 0) flips the sign: now the map is non-zero.
    _, heatmaps = predict_with_gradcam(small_model(-1.0), images, last_conv_layer_name="conv", class_index=0)
    assert heatmaps.max() == pytest.approx(1.0)


def test_grad_function_is_cached_per_model(model, batch):
    predict_with_gradcam(model, batch)
    first = gradcam._GRAD_FUNCTIONS[model][(LAST_CONV_LAYER, 1)]
    predict_with_gradcam(model, batch[:1])  # another batch size reuses the same function
    assert gradcam._GRAD_FUNCTIONS[model][(LAST_CONV_LAYER, 1)] is first


def test_bad_inputs(model):
    with pytest.raises(ValueError):
        predict_with_gradcam(model, np.zeros((SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError):
        predict_with_gradcam(model, np.zeros((1, SIZE, SIZE, 3), np.float32), last_conv_layer_name="nope")
    with pytest.raises(ValueError):
        predict_with_gradcam(model, np.zeros((1, SIZE, SIZE, 3), np.float32), class_index=2)


def test_overlay_and_pngs_at_original_resolution():
    gray = np.tile(np.arange(70, dtype=np.uint8), (50, 1))
    heatmap = np.array([[0.0, 1.0], [0.5, 0.0]], np.float32)
    overlay = overlay_heatmap(gray, heatmap, alpha=0.4)
    assert overlay.shape == (50, 70, 3) and overlay.dtype == np.uint8
    # Top-right is hot (red in RGB), top-left is cold (blue dominates the colour part).
    assert overlay[2, 67, 0] > overlay[2, 67, 2]
    np.testing.assert_array_equal(overlay_heatmap(gray, heatmap, alpha=0.0), np.repeat(gray[..., None], 3, axis=2))

    decoded = cv2.imdecode(np.frombuffer(heatmap_to_png(heatmap, gray.shape), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (50, 70, 3)
    rgb_back = cv2.cvtColor(
        cv2.imdecode(np.frombuffer(rgb_to_png(overlay), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )
    np.testing.assert_array_equal(rgb_back, overlay)
    with pytest.raises(ValueError):
        overlay_heatmap(gray.astype(np.float32), heatmap)
    with pytest.raises(ValueError):
        overlay_heatmap(gray, heatmap, alpha=1.5)
