"""factory_boy factories for the diagnosis models, plus tiny real image bytes for uploads and stored files.

Roles: ``UserFactory(radiologist=True)``, ``UserFactory(integrator=True)``, ``UserFactory(admin=True)`` (staff +
superuser, who count as radiologists), or the shortcuts ``RadiologistFactory`` / ``IntegratorFactory`` /
``AdminFactory``. Files are written to the default storage (the test settings point it at a temporary folder).
"""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from typing import Any

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from diagnosis.models import ModelVersion, Prediction, Review, Study

TEST_PASSWORD = "correct-horse-battery-staple"


# --- Image bytes ------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A structurally valid 8-bit grayscale PNG whose header claims ``width`` x ``height`` but holds one row.

    A decompression bomb's shape: the header is what a size check must read; no decoder should ever see it.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * min(width, 64))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    """A real 8-bit grayscale PNG (a horizontal gradient), built without any imaging library."""
    row = bytes((x * 255) // max(width - 1, 1) for x in range(width))
    raw = b"".join(b"\x00" + row for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_bytes(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


# --- Users ------------------------------------------------------------------------------------------------------


def _add_roles(user: Any, names: list[str]) -> None:
    # get_or_create: a ``transactional_db`` test flushes the groups the data migration created.
    user.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in names))


def _with_roles(*names: str) -> factory.PostGeneration:
    def add(user: Any, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        if create:
            _add_roles(user, [*names, *(extracted or [])])

    return factory.PostGeneration(add)


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    class Params:
        radiologist = factory.Trait(roles=_with_roles("radiologist"))
        integrator = factory.Trait(roles=_with_roles("integrator"))
        admin = factory.Trait(is_staff=True, is_superuser=True)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@hospital.example")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
        """``UserFactory(roles=["radiologist"])``: group names, created if missing."""
        if create and extracted:
            _add_roles(self, extracted)


class RadiologistFactory(UserFactory):
    radiologist = True


class IntegratorFactory(UserFactory):
    integrator = True


class AdminFactory(UserFactory):
    admin = True


# --- Model versions ---------------------------------------------------------------------------------------------


class ModelVersionFactory(DjangoModelFactory):
    """A calibrated, validated, active version taking all traffic (its artifact folder need not exist)."""

    class Meta:
        model = ModelVersion

    version = factory.Sequence(lambda n: f"test-v{n}")
    path = factory.LazyAttribute(lambda mv: str(settings.PNEUMO_MODEL_DIR / mv.version))
    sha256 = "0" * 64
    status = ModelVersion.Status.ACTIVE
    traffic_share = 100
    threshold = 0.5
    threshold_method = factory.LazyFunction(lambda: {"method": "fixed", "value": 0.5})
    threshold_calibrated_at = factory.LazyFunction(timezone.now)
    validated = True
    image_size = 224
    preprocessing = factory.LazyFunction(lambda: {"clahe": True})
    metrics = factory.LazyFunction(lambda: {"auc": {"value": 0.95, "ci95": [0.93, 0.97]}})
    population = "Pediatric chest X-rays (test data)."
    activated_at = factory.LazyFunction(timezone.now)


def _serving_version() -> ModelVersion:
    # Studies share the serving version rather than each creating another "100 %" one.
    existing = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, traffic_share__gt=0).first()
    return existing or ModelVersionFactory()


# --- Studies, predictions, reviews ------------------------------------------------------------------------------


class StudyFactory(DjangoModelFactory):
    """A queued PNG study. ``StudyFactory(completed=True)`` also has its display PNG and ``completed_at``."""

    class Meta:
        model = Study

    class Params:
        completed = factory.Trait(
            status=Study.Status.COMPLETED,
            completed_at=factory.LazyFunction(timezone.now),
            started_at=factory.LazyFunction(timezone.now),
            display_image=factory.LazyFunction(lambda: ContentFile(png_bytes(), name="display.png")),
        )

    id = factory.LazyFunction(uuid.uuid4)
    created_at = factory.LazyFunction(timezone.now)
    queued_at = factory.LazyAttribute(lambda study: study.created_at)
    file = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="original"))
    original_filename = "chest.png"
    sha256 = factory.LazyFunction(lambda: uuid.uuid4().hex * 2)
    size_bytes = 1024
    format = Study.Format.PNG
    width = 64
    height = 64
    patient_id = factory.Sequence(lambda n: f"P{n:06d}")
    accession_number = factory.Sequence(lambda n: f"A{n:06d}")
    uploaded_by = factory.SubFactory(IntegratorFactory)
    source = Study.Source.API
    status = Study.Status.QUEUED
    model_version = factory.LazyFunction(_serving_version)


class PredictionFactory(DjangoModelFactory):
    """The primary prediction of a completed study, with heatmap and overlay PNGs."""

    class Meta:
        model = Prediction

    study = factory.SubFactory(StudyFactory, completed=True)
    model_version = factory.LazyAttribute(lambda prediction: prediction.study.model_version)
    is_shadow = False
    probability = 0.8
    threshold = factory.LazyAttribute(lambda prediction: prediction.model_version.threshold)
    label = factory.LazyAttribute(
        lambda p: Prediction.Label.PNEUMONIA if p.probability >= p.threshold else Prediction.Label.NORMAL
    )
    heatmap = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="heatmap.png"))
    overlay = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="overlay.png"))
    preprocessing = factory.LazyFunction(lambda: {"clahe": True})
    inference_ms = 42.0


class ReviewFactory(DjangoModelFactory):
    class Meta:
        model = Review

    study = factory.SubFactory(StudyFactory, completed=True)
    prediction = None
    reviewer = factory.SubFactory(RadiologistFactory)
    finding = Review.Finding.PNEUMONIA
    agrees_with_model = None
    comment = ""
