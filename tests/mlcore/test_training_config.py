"""mlcore.training_config: TrainConfig applies the shared rules of mlcore.rules (no TensorFlow needed)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from mlcore.training_config import TrainConfig

CONFIG = TrainConfig(data_dir="/data/kermany", output_dir="/models")


def test_the_defaults_are_valid() -> None:
    CONFIG.validate()


def test_an_empty_version_resolves_to_the_default_version_name() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert CONFIG.resolved_version(now) == "v20250101-120000"
    assert dataclasses.replace(CONFIG, version="ward-v2").resolved_version(now) == "ward-v2"


@pytest.mark.parametrize("target", [0.3, 1.0, float("nan")])
def test_target_sensitivity_outside_the_shared_rule_is_refused(target: float) -> None:
    with pytest.raises(ValueError, match="Target sensitivity must be in"):
        dataclasses.replace(CONFIG, target_sensitivity=target).validate()


@pytest.mark.parametrize("version", ["../escape", ".hidden", "a/b", "with space", "a" * 101])
def test_a_version_that_is_not_a_plain_name_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match="version must be a plain name"):
        dataclasses.replace(CONFIG, version=version).validate()
