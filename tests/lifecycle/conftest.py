"""Fixtures of the model-lifecycle tests: versions in any state, reviewed studies built straight in the database.

Statistics are tested on Prediction and Review rows made here (the ML boundary is not under test); the expected
numbers are computed independently in each test (sklearn, hand formulas).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from diagnosis.models import ModelVersion, Prediction, Review, Study
from tests.factories import AdminFactory, IntegratorFactory, RadiologistFactory


def make_version(
    name: str,
    *,
    status: str = ModelVersion.Status.REGISTERED,
    share: int = 0,
    threshold: float = 0.5,
    calibrated: bool = True,
    validated: bool = True,
    validation_scores: list[float] | None = None,
) -> ModelVersion:
    return ModelVersion.objects.create(
        version=name,
        path=f"/nonexistent/{name}",
        sha256="0" * 64,
        status=status,
        traffic_share=share,
        threshold=threshold,
        threshold_method={"method": "target_sensitivity", "target": 0.95, "on": "validation"}
        if calibrated
        else {"method": "uncalibrated"},
        threshold_calibrated_at=timezone.now() if calibrated else None,
        validated=validated,
        image_size=32,
        preprocessing={"image_size": 32},
        validation_scores=validation_scores or [],
    )


@pytest.fixture
def admin(db: None) -> Any:
    return AdminFactory(username="ada.admin")


@pytest.fixture
def v3(db: None) -> ModelVersion:
    """The version serving every new study."""
    return make_version("v3", status=ModelVersion.Status.ACTIVE, share=100)


@pytest.fixture
def v4(db: None) -> ModelVersion:
    """A calibrated candidate, registered but not serving."""
    return make_version("v4")


@pytest.fixture
def reviewed_study(db: None) -> Callable[..., Study]:
    """``reviewed_study(truth, {version: probability}, shadow={version: probability})``: a completed study with
    predictions (label from each version's threshold) and a review whose finding is ``truth`` (None: no review)."""
    uploader = IntegratorFactory(username="pacs")
    reader = RadiologistFactory(username="rita")

    def build(
        truth: str | None,
        primary: dict[ModelVersion, float],
        shadow: dict[ModelVersion, float] | None = None,
        created_at: Any = None,
    ) -> Study:
        ((version, probability),) = primary.items()
        now = created_at or timezone.now()
        study = Study.objects.create(
            id=uuid.uuid4(),
            created_at=now,
            queued_at=now,
            completed_at=now,
            status=Study.Status.COMPLETED,
            file="studies/test/original",
            sha256=uuid.uuid4().hex * 2,
            size_bytes=10,
            format=Study.Format.PNG,
            width=64,
            height=64,
            uploaded_by=uploader,
            source=Study.Source.API,
            model_version=version,
        )
        for mv, p, is_shadow in [(version, probability, False)] + [(mv, p, True) for mv, p in (shadow or {}).items()]:
            prediction = Prediction.objects.create(
                study=study,
                model_version=mv,
                is_shadow=is_shadow,
                probability=p,
                threshold=mv.threshold,
                label=Prediction.Label.PNEUMONIA if p >= mv.threshold else Prediction.Label.NORMAL,
                preprocessing={},
                inference_ms=1.0,
            )
            if created_at is not None:
                Prediction.objects.filter(pk=prediction.pk).update(created_at=created_at)
        if truth is not None:
            Review.objects.create(study=study, reviewer=reader, finding=truth)
        return study

    return build


def write_fake_artifact(folder: Path, *, version: str, method: str = "target_sensitivity") -> Path:
    """An artifact folder the registry accepts without TensorFlow: a manifest vouching for a dummy model.keras."""
    from mlcore.artifact import Manifest, file_sha256
    from mlcore.config import PreprocessingConfig

    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"not really a keras file " + version.encode())
    manifest = Manifest(
        version=version,
        created="2026-01-01T00:00:00+00:00",
        code_revision="test",
        preprocessing=PreprocessingConfig(image_size=32).to_dict(),
        image_size=32,
        threshold=0.31,
        threshold_method={"method": method, "target": 0.95, "on": "validation", "n": 40},
        validated=True,
        validation_metrics={},
        test_metrics=None,
        dataset={},
        training={},
        population="test population",
        weights_sha256=file_sha256(folder / "model.keras"),
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()))
    (folder / "evaluation").mkdir()
    (folder / "evaluation" / "validation.json").write_text(
        json.dumps({"per_image": [{"probability": p} for p in (0.1, 0.2, 0.8)]})
    )
    return folder
