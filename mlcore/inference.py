"""Single-image inference with Grad-CAM, as served to clinicians.

:class:`Predictor` loads a verified artifact once and reuses it. Each prediction runs the
same preprocessing as training (:func:`mlcore.preprocessing.preprocess_bytes`, the
settings stored in the manifest) and one forward pass that yields both the probability
and the Grad-CAM heatmap (:func:`mlcore.gradcam.predict_with_gradcam`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mlcore.artifact import Manifest, load_artifact
from mlcore.config import PreprocessingConfig
from mlcore.errors import ImageMemoryError
from mlcore.gradcam import heatmap_to_png, overlay_heatmap, predict_with_gradcam, rgb_to_png
from mlcore.image_header import DEFAULT_MAX_PIXELS
from mlcore.imaging import MEMORY_REFUSAL, LoadedImage, is_out_of_memory
from mlcore.preprocessing import preprocess_bytes
from mlcore.rendition import Rendition, read_dicom_rendition

if TYPE_CHECKING:  # pragma: no cover
    import keras


@dataclass(frozen=True)
class InferenceResult:
    """Prediction for one image.

    Attributes:
        probability: P(PNEUMONIA) in [0, 1].
        label: ``"PNEUMONIA"`` if ``probability >= threshold`` else ``"NORMAL"``.
        threshold: Threshold used (the manifest's unless overridden).
        heatmap: ``(h, w)`` float32 Grad-CAM in [0, 1] at feature-map resolution.
        heatmap_png: Colour-mapped heatmap upscaled to the original image size, PNG.
        overlay_png: Heatmap blended over the original image at its resolution, PNG.
        image_png: The decoded grayscale image (e.g. a DICOM) as PNG, for browsers.
        preprocessing: Preprocessing settings applied (``PreprocessingConfig.to_dict()``).
        model_version: Manifest version of the model.
        inference_ms: Wall time of forward pass + Grad-CAM in milliseconds.
        loaded: The decoded image with format, header and DICOM metadata.
        activation_png: ``heatmap`` itself (feature-map resolution, no colour map) as an 8-bit grayscale PNG,
            ``round(heatmap * 255)``: viewers colour it themselves (a colour-blind-safe map, a threshold).
        rendition: The lossless 16-bit modality values of a grayscale DICOM with more than 8 bits stored, for
            window/level on the original bit depth (:mod:`mlcore.rendition`); ``None`` for other images.
    """

    probability: float
    label: str
    threshold: float
    heatmap: np.ndarray
    heatmap_png: bytes
    overlay_png: bytes
    image_png: bytes
    preprocessing: dict[str, Any]
    model_version: str
    inference_ms: float
    loaded: LoadedImage
    activation_png: bytes = b""
    rendition: Rendition | None = None


def activation_to_png(heatmap: np.ndarray) -> bytes:
    """``(h, w)`` float activations in [0, 1] as an ``(h, w)`` 8-bit grayscale PNG (``round(v * 255)``)."""
    values = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if values.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {values.shape}")
    gray = np.floor(np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", gray)
    if not ok:  # pragma: no cover - a valid uint8 array always encodes
        raise ValueError("PNG encoding of the activation map failed")
    return bytes(encoded.tobytes())


class Predictor:
    """A loaded model ready to predict. Build with :meth:`from_artifact`.

    Holds the Keras model, its manifest and the preprocessing settings from the manifest.
    One instance per process (TensorFlow models do not survive ``fork``).
    """

    def __init__(self, model: keras.Model, manifest: Manifest) -> None:
        self.model = model
        self.manifest = manifest
        self.preprocessing = PreprocessingConfig.from_dict(manifest.preprocessing)
        self.preprocessing.validate()
        if self.preprocessing.image_size != manifest.image_size:
            raise ValueError(
                f"manifest image_size {manifest.image_size} != preprocessing {self.preprocessing.image_size}"
            )

    @classmethod
    def from_artifact(cls, path: str | os.PathLike[str]) -> Predictor:
        """Load and verify an artifact folder (see :func:`mlcore.artifact.load_artifact`).

        Raises:
            mlcore.errors.ArtifactError: The artifact is missing, modified or invalid.
        """
        artifact = load_artifact(Path(path))
        return cls(artifact.model, artifact.manifest)

    @property
    def version(self) -> str:
        """Model version from the manifest."""
        return self.manifest.version

    def warm_up(self) -> None:
        """Run one blank image through the model so the first real request does not pay
        for graph tracing (seconds). Call it once after loading, e.g. in a worker's init."""
        size = self.preprocessing.image_size
        predict_with_gradcam(self.model, np.zeros((1, size, size, self.preprocessing.channels), np.float32))

    def preprocess(self, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, LoadedImage]:
        """Decode and preprocess upload bytes exactly as in training.

        Returns:
            ``((S, S, 3) float32 in [0, 1], LoadedImage)``.

        Raises:
            mlcore.errors.ImageError: Empty, unsupported, corrupt or too large image.
        """
        return preprocess_bytes(data, self.preprocessing, max_pixels=max_pixels)

    def _threshold(self, threshold: float | None) -> float:
        value = self.manifest.threshold if threshold is None else float(threshold)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        return value

    def predict(
        self, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, threshold: float | None = None
    ) -> InferenceResult:
        """Predict one image from its bytes (PNG, JPEG or DICOM).

        Args:
            data: Raw upload bytes.
            max_pixels: Refuse images with more pixels (decompression bombs).
            threshold: Override the manifest threshold (e.g. a site-specific one).

        Raises:
            mlcore.errors.ImageError: Image cannot be decoded or is too large.
            ValueError: Threshold outside [0, 1].
        """
        return self.predict_batch([data], max_pixels=max_pixels, threshold=threshold)[0]

    def predict_batch(
        self, items: Sequence[bytes], *, max_pixels: int = DEFAULT_MAX_PIXELS, threshold: float | None = None
    ) -> list[InferenceResult]:
        """Predict several images in one forward pass; raises on the first bad image.

        ``inference_ms`` of each result is the batch time divided by the batch size.
        """
        thr = self._threshold(threshold)
        if not items:
            return []
        try:
            return self._predict_batch(items, max_pixels=max_pixels, threshold=thr)
        except MemoryError as exc:
            raise ImageMemoryError(MEMORY_REFUSAL) from exc
        except cv2.error as exc:
            if not is_out_of_memory(exc):
                raise
            raise ImageMemoryError(MEMORY_REFUSAL) from exc

    def _predict_batch(self, items: Sequence[bytes], *, max_pixels: int, threshold: float) -> list[InferenceResult]:
        thr = threshold
        prepared = [self.preprocess(data, max_pixels=max_pixels) for data in items]
        batch = np.stack([x for x, _ in prepared]).astype(np.float32, copy=False)
        started = time.perf_counter()
        probabilities, heatmaps = predict_with_gradcam(self.model, batch)
        elapsed_ms = (time.perf_counter() - started) * 1000.0 / len(items)
        settings = self.preprocessing.to_dict()
        results = []
        for data, (_, loaded), probability, heatmap in zip(items, prepared, probabilities, heatmaps, strict=True):
            gray = loaded.pixels
            ok, image_png = cv2.imencode(".png", gray)
            if not ok:  # pragma: no cover - a valid uint8 array always encodes
                raise ValueError("PNG encoding of the loaded image failed")
            probability = float(probability)
            results.append(
                InferenceResult(
                    probability=probability,
                    label="PNEUMONIA" if probability >= thr else "NORMAL",
                    threshold=thr,
                    heatmap=heatmap,
                    heatmap_png=heatmap_to_png(heatmap, gray.shape),
                    overlay_png=rgb_to_png(overlay_heatmap(gray, heatmap)),
                    image_png=image_png.tobytes(),
                    preprocessing=settings,
                    model_version=self.manifest.version,
                    inference_ms=elapsed_ms,
                    loaded=loaded,
                    activation_png=activation_to_png(heatmap),
                    # A second decode of the DICOM (tens of ms): the 8-bit path stays exactly as trained.
                    rendition=read_dicom_rendition(data, max_pixels=max_pixels) if loaded.format == "dicom" else None,
                )
            )
        return results
