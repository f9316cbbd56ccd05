"""Intended use: DICOM ages, the checks against the manifest's training population, and the manifest field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlcore.artifact import Manifest, read_manifest
from mlcore.config import PreprocessingConfig
from mlcore.errors import ArtifactError
from mlcore.intended_use import (
    KERMANY_INTENDED_USE,
    default_intended_use,
    intended_use_warnings,
    parse_dicom_age,
)
from mlcore.training_config import KERMANY_POPULATION


@pytest.mark.parametrize(
    ("value", "years"),
    [("054Y", 54.0), ("004Y", 4.0), ("006M", 0.5), ("052W", 52 * 7 / 365.25), ("003D", 3 / 365.25), ("54", 54.0)],
)
def test_dicom_ages_are_read_in_years(value: str, years: float) -> None:
    assert parse_dicom_age(value) == pytest.approx(years)


@pytest.mark.parametrize("value", ["", "Y", "abc", "12X", "1234Y", "-5Y"])
def test_unreadable_ages_are_none(value: str) -> None:
    assert parse_dicom_age(value) is None


@pytest.mark.parametrize(
    ("age", "codes"),
    [("054Y", ["age"]), ("004Y", []), ("001Y", []), ("005Y", []), ("071M", []), ("006M", ["age"]), ("006Y", ["age"])],
)
def test_age_outside_the_training_range_is_a_warning(age: str, codes: list[str]) -> None:
    warnings = intended_use_warnings(KERMANY_INTENDED_USE, patient_age=age, view_position="PA", modality="DX")
    assert [warning["code"] for warning in warnings] == codes


def test_an_adult_warning_says_the_age_and_the_range() -> None:
    [warning] = intended_use_warnings(KERMANY_INTENDED_USE, patient_age="054Y")
    assert warning["message"] == "Patient age 54 years is outside the training population's ages (1–5 years)."


def test_other_views_and_modalities_are_warnings_and_missing_values_are_not() -> None:
    warnings = intended_use_warnings(KERMANY_INTENDED_USE, patient_age="003Y", view_position="LL", modality="CT")
    assert [warning["code"] for warning in warnings] == ["view", "modality"]
    assert intended_use_warnings(KERMANY_INTENDED_USE) == []  # a PNG: nothing known, nothing flagged
    assert intended_use_warnings(KERMANY_INTENDED_USE, view_position="ap", modality="cr") == []


def test_nothing_is_checked_without_a_recorded_intended_use() -> None:
    assert intended_use_warnings(None, patient_age="054Y", view_position="LL", modality="CT") == []


def test_kermany_populations_default_to_the_kermany_ranges() -> None:
    assert default_intended_use(KERMANY_POPULATION) == KERMANY_INTENDED_USE
    assert default_intended_use(f"{KERMANY_POPULATION} (as documented for the original training notebook)")
    assert default_intended_use("Adult chest X-rays, hospital X") is None


def _manifest(**extra: Any) -> dict[str, Any]:
    return {
        "version": "v1",
        "created": "2026-11-30T00:00:00+00:00",
        "code_revision": "unknown",
        "preprocessing": PreprocessingConfig(image_size=224).to_dict(),
        "image_size": 224,
        "threshold": 0.5,
        "threshold_method": {"method": "uncalibrated"},
        "validated": False,
        "validation_metrics": {},
        "test_metrics": None,
        "dataset": {},
        "training": {},
        "population": KERMANY_POPULATION,
        "weights_sha256": "0" * 64,
        **extra,
    }


def test_a_manifest_without_intended_use_still_reads() -> None:
    assert Manifest.from_dict(_manifest()).intended_use is None
    assert Manifest.from_dict(_manifest(intended_use=KERMANY_INTENDED_USE)).intended_use == KERMANY_INTENDED_USE
    with pytest.raises(ArtifactError, match="intended_use"):
        Manifest.from_dict(_manifest(intended_use=["PA"]))


def test_the_demo_artifact_records_the_population_it_stands_in_for(demo_artifact: Path) -> None:
    intended_use = read_manifest(demo_artifact).intended_use
    assert intended_use is not None
    assert (intended_use["age_years"], intended_use["views"]) == ([1, 5], ["PA", "AP"])
    assert intended_use["population"].startswith("untrained demo")
