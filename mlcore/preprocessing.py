"""The one preprocessing path shared by training and inference.

Training (:func:`preprocess_file`, per file of the input pipeline) and
inference (:func:`preprocess_bytes`, per upload) both end in
:func:`preprocess_pixels`, so a model never sees inputs prepared differently
from the ones it was trained on. That is a safety property: do not add a
second code path (e.g. a ``tf.image`` resize in the training pipeline).

The order follows the specification exactly::

    grayscale (H, W) uint8
      -> CLAHE (clip 2.0, 8 x 8 tiles)       at the original resolution
      -> 3 identical channels (H, W, 3)
      -> / 255, float32 in [0, 1]
      -> resize to (S, S, 3)                 aspect ratio not kept, as in the training data
      -> clip to [0, 1]                      bilinear/cubic can overshoot
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from mlcore.config import PreprocessingConfig
from mlcore.image_header import DEFAULT_MAX_PIXELS
from mlcore.imaging import LoadedImage, load_image, load_image_file

_INTERPOLATION_FLAGS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def apply_clahe(image: np.ndarray, *, clip_limit: float = 2.0, tile_grid_size: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Contrast Limited Adaptive Histogram Equalization (OpenCV).

    A constant image is returned unchanged (as a copy): it has no contrast to
    equalise, and OpenCV would otherwise map it to a value that depends on the
    clip limit's redistribution rather than on the image.

    Args:
        image: ``(H, W)`` ``uint8`` grayscale.
        clip_limit: OpenCV ``clipLimit``, > 0.
        tile_grid_size: OpenCV ``tileGridSize`` (tiles across, tiles down), each >= 1.

    Returns:
        ``(H, W)`` ``uint8``, a new array.

    Raises:
        ValueError: Wrong dtype, shape or parameters (message ends with ``Received: ...``).
    """
    _check_gray(image)
    if not clip_limit > 0:
        raise ValueError(f"clip_limit must be > 0. Received: {clip_limit!r}")
    if len(tile_grid_size) != 2 or any(int(n) != n or n < 1 for n in tile_grid_size):
        raise ValueError(f"tile_grid_size must be two integers >= 1. Received: {tile_grid_size!r}")
    if image.min() == image.max():
        return image.copy()
    # A CLAHE object holds scratch buffers, so one per call keeps this thread-safe.
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tile_grid_size[0]), int(tile_grid_size[1])))
    return clahe.apply(np.ascontiguousarray(image))


def to_three_channels(image: np.ndarray) -> np.ndarray:
    """Repeat a grayscale image into three identical channels.

    Args:
        image: ``(H, W)`` array, any dtype.

    Returns:
        ``(H, W, 3)`` array of the same dtype, C-contiguous.
    """
    if image.ndim != 2:
        raise ValueError(f"Expected a 2-D (H, W) image. Received: shape={image.shape}")
    return np.ascontiguousarray(np.repeat(image[:, :, np.newaxis], 3, axis=2))


def resize_interpolation(source_hw: tuple[int, int], size: int, interpolation: str) -> int:
    """Pick the OpenCV interpolation flag for resizing ``source_hw`` to ``size x size``.

    ``"area"`` means ``INTER_AREA`` when neither side grows (averaging avoids
    aliasing of fine lung texture) and ``INTER_LINEAR`` when any side grows
    (``INTER_AREA`` then degenerates towards nearest neighbour).
    """
    if interpolation == "area":
        return cv2.INTER_AREA if max(size / source_hw[0], size / source_hw[1]) <= 1.0 else cv2.INTER_LINEAR
    if interpolation not in _INTERPOLATION_FLAGS:
        raise ValueError(f"Unknown interpolation. Received: {interpolation!r}")
    return _INTERPOLATION_FLAGS[interpolation]


def preprocess_pixels(gray: np.ndarray, config: PreprocessingConfig) -> np.ndarray:
    """Turn a grayscale radiograph into a model input.

    Args:
        gray: ``(H, W)`` ``uint8``, as returned by :func:`mlcore.imaging.load_image`.
        config: Preprocessing parameters saved with the model.

    Returns:
        ``(S, S, 3)`` ``float32`` in [0, 1], C-contiguous, ``S = config.image_size``;
        the three channels are identical.

    Raises:
        ValueError: Wrong input dtype/shape or invalid config.
    """
    config.validate()
    _check_gray(gray)
    equalised = apply_clahe(gray, clip_limit=config.clahe_clip_limit, tile_grid_size=config.clahe_tile_grid)
    scaled = to_three_channels(equalised).astype(np.float32) / np.float32(255.0)
    size = config.image_size
    flag = resize_interpolation(gray.shape, size, config.interpolation)
    resized = cv2.resize(scaled, (size, size), interpolation=flag)
    return np.ascontiguousarray(np.clip(resized, 0.0, 1.0), dtype=np.float32)


def preprocess_bytes(
    data: bytes, config: PreprocessingConfig, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, LoadedImage]:
    """Load an upload and preprocess it (the inference path).

    Returns:
        ``(model_input, loaded)``: ``(S, S, 3)`` ``float32`` in [0, 1], and the
        loaded ``(H, W)`` ``uint8`` image for the overlay at original resolution.

    Raises:
        mlcore.errors.ImageError: The file is refused (see :func:`mlcore.imaging.load_image`).
    """
    loaded = load_image(data, max_pixels=max_pixels)
    return preprocess_pixels(loaded.pixels, config), loaded


def preprocess_file(path: str | os.PathLike[str], config: PreprocessingConfig) -> np.ndarray:
    """Load a file and preprocess it (the training path): ``(S, S, 3)`` ``float32`` in [0, 1]."""
    return preprocess_pixels(load_image_file(path).pixels, config)


def _check_gray(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2 or image.size == 0:
        received = f"dtype={image.dtype}, shape={image.shape}" if isinstance(image, np.ndarray) else repr(type(image))
        raise ValueError(f"Expected a non-empty (H, W) uint8 grayscale image. Received: {received}")
