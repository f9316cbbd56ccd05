"""Grad-CAM (Selvaraju et al., 2017) computed in the same forward pass as the prediction.

A gradient model ``keras.Model(inputs, [conv_output, model.output])`` is run once under
``tf.GradientTape``; the gradient of the score with respect to the last convolutional
feature map needs only the head's backward pass (global pooling + dense layers), so the
heatmap costs almost nothing on top of the prediction, and prediction and heatmap
always belong to the same pass (no second, possibly different, forward run).

Colour helpers (:func:`overlay_heatmap`, :func:`heatmap_to_png`, :func:`rgb_to_png`)
need only OpenCV; TensorFlow is imported lazily.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from mlcore.model import LAST_CONV_LAYER

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    #: ``batch -> (probabilities (N,), heatmaps (N, h, w))``, both float32 eager tensors.
    _GradFunction = Callable[[npt.NDArray[np.float32]], tuple[tf.Tensor, tf.Tensor]]

# Per-model cache of the compiled gradient function. Weak keys: the cache must not keep
# an unloaded model (and its ~100 MB of weights) alive. Not an attribute on the model:
# Keras would track it as a sub-layer and save it with the model.
_GRAD_FUNCTIONS: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], _GradFunction]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _grad_function(model: keras.Model, last_conv_layer_name: str, sign: int) -> _GradFunction:
    """Return a cached ``tf.function(batch) -> (probs (N,), heatmaps (N,h,w))``."""
    key = (last_conv_layer_name, sign)
    with _LOCK:
        per_model = _GRAD_FUNCTIONS.setdefault(model, {})
        if key in per_model:
            return per_model[key]

        import keras
        import tensorflow as tf

        conv_layer = model.get_layer(last_conv_layer_name)  # ValueError if absent
        if len(model.inputs) != 1:
            raise ValueError(f"Grad-CAM needs a single-input model, got {len(model.inputs)} inputs")
        grad_model = keras.Model(model.inputs[0], [conv_layer.output, model.output])
        input_shape = tuple(model.inputs[0].shape[1:])

        def compute(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                conv_output, predictions = grad_model(batch, training=False)
                # Score of the explained class: P(PNEUMONIA), or 1 - P for NORMAL
                # (sign -1; the constant drops out of the gradient).
                score = predictions[:, 0] * float(sign)
            # Samples are independent in inference mode, so the gradient of the summed
            # score gives each sample's own gradient.
            grads = tape.gradient(score, conv_output)  # (N, h, w, C)
            channel_weights = tf.reduce_mean(grads, axis=(1, 2))  # (N, C)
            cam = tf.einsum("nhwc,nc->nhw", conv_output, channel_weights)
            cam = tf.nn.relu(cam)
            peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
            # keras-io divides by the max unguarded; a flat (all <= 0) map would be NaN.
            heatmaps = tf.math.divide_no_nan(cam, peak)
            return tf.cast(predictions[:, 0], tf.float32), tf.cast(heatmaps, tf.float32)

        # One traced graph for every batch size (None) of this input shape.
        function: _GradFunction = tf.function(
            compute, input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)]
        )
        per_model[key] = function
        return function


def predict_with_gradcam(
    model: keras.Model,
    batch: npt.ArrayLike,
    *,
    last_conv_layer_name: str = LAST_CONV_LAYER,
    class_index: int | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Predict and compute Grad-CAM heatmaps in one forward pass.

    Args:
        model: Classifier with a single sigmoid output ``(N, 1)``.
        batch: ``(N, S, S, 3)`` float32 model input (output of the preprocessing).
        last_conv_layer_name: Layer whose feature map is weighted.
        class_index: ``None`` or 1 explains PNEUMONIA (the predicted score); 0 explains
            NORMAL (gradient of ``1 - p``).

    Returns:
        ``(probabilities, heatmaps)``: ``(N,)`` float32 P(PNEUMONIA) and ``(N, h, w)``
        float32 heatmaps in [0, 1] (all zeros where no location supports the class).

    Raises:
        ValueError: Bad batch shape or unknown layer name / class index.
    """
    inputs = np.asarray(batch, dtype=np.float32)
    if inputs.ndim != 4:
        raise ValueError(f"batch must be (N, S, S, 3), got shape {inputs.shape}")
    if class_index not in (None, 0, 1):
        raise ValueError(f"class_index must be None, 0 or 1 for a sigmoid model, got {class_index}")
    sign = -1 if class_index == 0 else 1
    compute = _grad_function(model, last_conv_layer_name, sign)
    probabilities, heatmaps = compute(inputs)
    return np.asarray(probabilities.numpy(), dtype=np.float32), np.asarray(heatmaps.numpy(), dtype=np.float32)


def make_gradcam_heatmap(
    image_batch: npt.ArrayLike,
    model: keras.Model,
    *,
    last_conv_layer_name: str = LAST_CONV_LAYER,
    class_index: int | None = None,
) -> npt.NDArray[np.float32]:
    """keras-io compatible wrapper: the heatmap of the first image of the batch.

    Args:
        image_batch: ``(N, S, S, 3)`` float32 (usually N = 1).
        model: Classifier, see :func:`predict_with_gradcam`.
        last_conv_layer_name: Layer whose feature map is weighted.
        class_index: See :func:`predict_with_gradcam`.

    Returns:
        ``(h, w)`` float32 in [0, 1].
    """
    _, heatmaps = predict_with_gradcam(
        model, image_batch, last_conv_layer_name=last_conv_layer_name, class_index=class_index
    )
    first: npt.NDArray[np.float32] = heatmaps[0]
    return first


def _check_heatmap(heatmap: npt.ArrayLike) -> npt.NDArray[np.float32]:
    values = np.asarray(heatmap, dtype=np.float32)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"heatmap must be a non-empty (h, w) array, got shape {values.shape}")
    # NaN-safe clip: a NaN would become an arbitrary colour after the uint8 cast.
    clipped: npt.NDArray[np.float32] = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    return clipped


def _colorize(heatmap: npt.ArrayLike, size: tuple[int, int], colormap: int) -> npt.NDArray[np.uint8]:
    """Upscale ``(h, w)`` [0, 1] to ``size = (H, W)`` and colour-map; returns BGR uint8."""
    height, width = int(size[0]), int(size[1])
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive (height, width), got {size}")
    # Bilinear upscaling of the coarse map (e.g. 12 x 12) to the original resolution;
    # the model saw the whole image squeezed to S x S, so the map covers the whole image.
    resized = cv2.resize(_check_heatmap(heatmap), (width, height), interpolation=cv2.INTER_LINEAR)
    as_uint8 = np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)
    colored: npt.NDArray[np.uint8] = cv2.applyColorMap(as_uint8, colormap)
    return colored


def overlay_heatmap(
    gray: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.4, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Blend a heatmap over the original grayscale image at the image's own resolution.

    Args:
        gray: ``(H, W)`` uint8 original image (as loaded, not preprocessed).
        heatmap: ``(h, w)`` float32 in [0, 1].
        alpha: Heatmap weight in [0, 1]; the image gets ``1 - alpha``.
        colormap: OpenCV colormap id.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"gray must be (H, W) uint8, got {gray.shape} {gray.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    color_bgr = _colorize(heatmap, gray.shape, colormap)
    base_bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    blended = cv2.addWeighted(base_bgr, 1.0 - alpha, color_bgr, alpha, 0.0)
    return cv2.cvtColor(blended, cv2.COLOR_BGR2RGB)


def _encode_png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - imencode fails only on invalid input
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


def heatmap_to_png(heatmap: np.ndarray, size: tuple[int, int], *, colormap: int = cv2.COLORMAP_JET) -> bytes:
    """Colour-map a heatmap upscaled to ``size`` and encode it as PNG.

    Args:
        heatmap: ``(h, w)`` float32 in [0, 1].
        size: ``(height, width)`` of the output, numpy order (e.g. ``gray.shape``).
        colormap: OpenCV colormap id.

    Returns:
        PNG bytes of an ``(height, width)`` RGB image.
    """
    return _encode_png(_colorize(heatmap, size, colormap))  # imencode expects BGR


def rgb_to_png(rgb: np.ndarray) -> bytes:
    """Encode ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` uint8 gray) as PNG bytes."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] != 3):
        raise ValueError(f"expected (H, W, 3) or (H, W) uint8, got {rgb.shape} {rgb.dtype}")
    if rgb.ndim == 3:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return _encode_png(rgb)
