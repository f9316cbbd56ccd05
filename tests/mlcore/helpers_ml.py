"""Shared helpers for the model/training tests: synthetic X-ray-like images and a demo artifact.

Images are tiny (>= 40 px: mlcore.imaging refuses sides under 32 px) and synthetic; the
real data in ``shared/data`` is never needed by unit tests.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_DEMO_CACHE: dict[int, Path] = {}


def synthetic_xray(rng: np.random.Generator, *, label: int, shape: tuple[int, int] = (48, 56)) -> np.ndarray:
    """``(H, W)`` uint8 image: noisy vertical gradient; PNEUMONIA (1) adds a bright blob."""
    height, width = shape
    base = np.linspace(60, 160, height, dtype=np.float32)[:, None] * np.ones((1, width), np.float32)
    image = base + rng.normal(0, 12, size=shape)
    if label == 1:
        cy, cx = rng.integers(height // 4, 3 * height // 4), rng.integers(width // 4, 3 * width // 4)
        yy, xx = np.mgrid[:height, :width]
        image += 90 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (min(shape) / 6) ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", image)
    assert ok
    return buffer.tobytes()


def write_class_folder(folder: Path, *, n_per_class: int, seed: int, start: int = 0, ext: str = ".png") -> None:
    """Write ``folder/{NORMAL,PNEUMONIA}`` with Kermany-style names.

    NORMAL: ``IM-<id>-0001`` (one image per patient); PNEUMONIA: ``person<k>_bacteria_<j>``
    with two images per patient, so patient grouping matters.
    """
    rng = np.random.default_rng(seed)
    (folder / "NORMAL").mkdir(parents=True, exist_ok=True)
    (folder / "PNEUMONIA").mkdir(parents=True, exist_ok=True)
    for i in range(n_per_class):
        normal = folder / "NORMAL" / f"IM-{start + i:04d}-0001{ext}"
        sick = folder / "PNEUMONIA" / f"person{start + i // 2}_bacteria_{start + i}{ext}"
        cv2.imwrite(str(normal), synthetic_xray(rng, label=0))
        cv2.imwrite(str(sick), synthetic_xray(rng, label=1))


def write_dataset(root: Path, *, n_train: int = 12, n_val: int = 0, n_test: int = 0, seed: int = 0) -> Path:
    """Write a ``{train,val,test}/{NORMAL,PNEUMONIA}`` dataset; zero counts skip a split."""
    write_class_folder(root / "train", n_per_class=n_train, seed=seed, start=0, ext=".png")
    if n_val:
        write_class_folder(root / "val", n_per_class=n_val, seed=seed + 1, start=1000, ext=".jpeg")
    if n_test:
        write_class_folder(root / "test", n_per_class=n_test, seed=seed + 2, start=2000, ext=".png")
    return root


def demo_artifact(tmp_path_factory, image_size: int = 32) -> Path:
    """A cached untrained demo artifact (one per process and size; ~100 MB on disk)."""
    from mlcore.artifact import create_demo_artifact

    if image_size not in _DEMO_CACHE:
        folder = tmp_path_factory.mktemp(f"demo{image_size}")
        create_demo_artifact(folder, image_size=image_size, seed=0)
        _DEMO_CACHE[image_size] = folder
    return _DEMO_CACHE[image_size]
