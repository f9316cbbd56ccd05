"""The lifecycle from the command line: register_model, calibrate_model, set_traffic, ab_report."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from diagnosis.models import AuditEvent, ModelVersion
from tests.lifecycle.conftest import make_version, write_fake_artifact

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_set_traffic_v3_90_v4_10(v3: ModelVersion, v4: ModelVersion) -> None:
    printed = run("set_traffic", "v3=90", "v4=10")
    assert "Traffic for studies queued from now on: v3 90 %, v4 10 %" in printed
    assert "before: v3 100 %" in printed
    assert dict(ModelVersion.objects.filter(traffic_share__gt=0).values_list("version", "traffic_share")) == {
        "v3": 90,
        "v4": 10,
    }
    assert AuditEvent.objects.filter(action="model.traffic_changed").count() == 1
    assert "stopped serving (now registered): v4" in run("set_traffic", "v3=100")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["v3=90", "v4=5"], "add up to 95 %"),
        (["v3:90"], "NAME=PERCENT"),
        (["v3=ninety"], "NAME=PERCENT"),
        (["v3=50", "v3=50"], "named twice"),
        (["v3=90", "v5=10"], "v5 has no calibrated threshold"),
    ],
)
def test_set_traffic_refusals_are_command_errors(
    v3: ModelVersion, v4: ModelVersion, args: list[str], message: str
) -> None:
    make_version("v5", calibrated=False)
    with pytest.raises(CommandError, match=message):
        run("set_traffic", *args)


def test_register_model_registers_an_artifact_folder(tmp_path: Path) -> None:
    folder = write_fake_artifact(tmp_path / "lab-v7", version="lab-v7")
    printed = run("register_model", str(folder), "--version", "v7", "--notes", "from the lab")
    assert "Registered v7 (registered)" in printed and "threshold 0.3100" in printed and "pediatric" in printed
    assert ModelVersion.objects.get(version="v7").notes == "from the lab"
    with pytest.raises(CommandError, match="already registered"):
        run("register_model", str(folder), "--version", "v7")


def test_calibrate_model_on_reviews(v3: ModelVersion, reviewed_study: Callable[..., Any]) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW, calibrated=False)
    for i in range(30):
        reviewed_study("PNEUMONIA" if i % 3 == 0 else "NORMAL", {v3: 0.5}, shadow={v4: (i % 3 == 0) * 0.5 + i / 100})
    printed = run("calibrate_model", "--version", "v4", "--reviews", "--target-sensitivity", "0.9")
    assert "v4: threshold uncalibrated -> " in printed and "on reviewed studies" in printed
    assert "n = 30 (10 pneumonia, 20 normal)" in printed and "pediatric" in printed
    assert ModelVersion.objects.get(version="v4").is_calibrated


def test_calibrate_model_needs_a_known_version_and_one_source(v3: ModelVersion) -> None:
    with pytest.raises(CommandError, match="No model version 'nope'. Registered: v3"):
        run("calibrate_model", "--version", "nope", "--reviews")
    with pytest.raises(CommandError):
        run("calibrate_model", "--version", "v3")
    with pytest.raises(CommandError, match="Too few reviewed studies"):
        run("calibrate_model", "--version", "v3", "--reviews")


def test_ab_report_prints_the_table_the_comparison_drift_and_the_population(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW, validation_scores=[0.1, 0.2, 0.3])
    for i in range(24):
        reviewed_study("PNEUMONIA" if i % 2 else "NORMAL", {v3: 0.9 if i % 2 else 0.1}, shadow={v4: 0.9})
    printed = run("ab_report")
    assert "v3 [serving 100 %]" in printed and "v4 [shadow]" in printed
    assert "sensitivity  1.00 (0.76–1.00) 12/12" in printed  # Wilson 95 % for 12/12: (0.758, 1)
    assert "On 24 studies reviewed by radiologists, v3 is correct significantly more often than v4" in printed
    assert "v3: no validation baseline" in printed and "v4: not enough predictions yet" in printed
    assert "pediatric" in printed and "Radiologists reviewed each study seeing the serving version" in printed

    report = json.loads(run("ab_report", "--version", "v4", "--json"))
    assert [v["version"] for v in report["versions"]] == ["v4"] and report["pairs"] == []
    with pytest.raises(CommandError, match="No model version 'v9'"):
        run("ab_report", "--version", "v9")


@pytest.mark.slow
def test_a_notebook_h5_is_registered_uncalibrated_then_calibrated_on_a_folder_then_serves(
    v3: ModelVersion, tmp_path: Path, settings: Any
) -> None:
    from mlcore.model import build_classifier
    from tests.mlcore.helpers_ml import write_class_folder

    settings.PNEUMO_MODEL_DIR = tmp_path / "models"
    h5 = tmp_path / "notebook" / "pneumonia_resnet50_final.h5"
    h5.parent.mkdir()
    build_classifier(image_size=32, weights=None, seed=2).save(h5)

    printed = run("register_model", str(h5))
    version = ModelVersion.objects.get(version="pneumonia_resnet50_final")
    assert "is NOT calibrated" in printed and not version.is_calibrated and not version.validated
    assert Path(version.path) == (tmp_path / "models" / "pneumonia_resnet50_final").resolve()
    assert version.dataset["file"] == "pneumonia_resnet50_final.h5" and version.preprocessing["clahe_clip_limit"] == 2.0
    with pytest.raises(CommandError, match="has no calibrated threshold"):
        run("set_traffic", "v3=90", "pneumonia_resnet50_final=10")

    write_class_folder(tmp_path / "local" / "val", n_per_class=3, seed=9)
    printed = run("calibrate_model", "--version", version.version, "--data-dir", str(tmp_path / "local"))
    version.refresh_from_db()
    assert version.is_calibrated and version.threshold_method["n"] == 6 and 0 < version.threshold < 1
    assert version.threshold_method["on"] == f"labelled folder {(tmp_path / 'local' / 'val').resolve()}"
    assert "threshold uncalibrated -> " in printed
    assert "Traffic for studies queued from now on: v3 90 %, pneumonia_resnet50_final 10 %" in run(
        "set_traffic", "v3=90", "pneumonia_resnet50_final=10"
    )
