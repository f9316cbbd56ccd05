"""Fixtures for service-level tests: real PostgreSQL, the ML boundary replaced by a fake predictor."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from diagnosis.models import ModelVersion


def png_bytes(width: int = 96, height: int = 80, value: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class FakeResult:
    probability: float
    label: str
    threshold: float
    heatmap_png: bytes = field(default_factory=png_bytes)
    overlay_png: bytes = field(default_factory=png_bytes)
    image_png: bytes = field(default_factory=png_bytes)
    preprocessing: dict[str, Any] = field(default_factory=lambda: {"image_size": 64, "clahe_clip_limit": 2.0})
    inference_ms: float = 12.5
    activation_png: bytes = b""
    rendition: Any = None


class FakePredictor:
    """Stands in for ``mlcore.inference.Predictor`` at the ML boundary (services are under test, not the model)."""

    def __init__(self, probability: float = 0.8, error: Exception | None = None) -> None:
        self.probability, self.error, self.calls = probability, error, 0

    def predict(self, data: bytes, *, max_pixels: int, threshold: float) -> FakeResult:
        self.calls += 1
        if self.error is not None:
            raise self.error
        label = "PNEUMONIA" if self.probability >= threshold else "NORMAL"
        return FakeResult(probability=self.probability, label=label, threshold=threshold)


@pytest.fixture
def fake_predictor(monkeypatch: pytest.MonkeyPatch) -> FakePredictor:
    predictor = FakePredictor()
    monkeypatch.setattr("diagnosis.ml.predictor_for", lambda version: predictor)
    return predictor


@pytest.fixture
def uploader(db: None) -> User:
    user = User.objects.create_user("uploader-svc")
    user.groups.add(Group.objects.get_or_create(name="integrator")[0])
    return user


@pytest.fixture
def reader(db: None) -> User:
    user = User.objects.create_user("reader-svc")
    user.groups.add(Group.objects.get_or_create(name="radiologist")[0])
    return user


def make_version(
    name: str, *, status: str = "active", share: int = 100, threshold: float = 0.5, calibrated: bool = True
) -> ModelVersion:
    return ModelVersion.objects.create(
        version=name,
        path=f"/nonexistent/{name}",
        sha256="0" * 64,
        status=status,
        traffic_share=share,
        threshold=threshold,
        threshold_method={"method": "target_sensitivity", "target": 0.95, "on": "validation"},
        threshold_calibrated_at=timezone.now() if calibrated else None,
        validated=True,
        image_size=64,
        preprocessing={"image_size": 64},
    )


@pytest.fixture
def serving_version(db: None) -> ModelVersion:
    return make_version("svc-v1")


@pytest.fixture
def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("scan.png", png_bytes(), content_type="image/png")
