"""`create_demo_model`: a new site can try the whole flow, and everything says the model is not validated."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from diagnosis.models import ModelVersion
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.slow
def test_it_registers_and_activates_an_untrained_model_marked_not_validated(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.PNEUMO_MODEL_DIR = tmp_path
    out = io.StringIO()
    call_command("create_demo_model", "--image-size", "32", "--version", "demo-32", stdout=out)
    version = ModelVersion.objects.get(version="demo-32")
    assert version.status == ModelVersion.Status.ACTIVE and version.traffic_share == 100
    assert version.validated is False and version.threshold_calibrated_at is None
    assert (tmp_path / "demo-32" / "model.keras").is_file()
    assert "meaningless" in out.getvalue()


def test_if_none_leaves_a_site_with_a_model_alone() -> None:
    ModelVersionFactory(version="trained-v1")
    out = io.StringIO()
    call_command("create_demo_model", "--if-none", stdout=out)
    assert "already registered" in out.getvalue()
    assert list(ModelVersion.objects.values_list("version", flat=True)) == ["trained-v1"]
