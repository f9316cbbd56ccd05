"""mlcore.rules: the rules shared with the web app (plain pytest, no database, no TensorFlow)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlcore.rules import (
    H5_SUFFIXES,
    TARGET_SENSITIVITY_MAX,
    TARGET_SENSITIVITY_MIN,
    VERSION_NAME_PATTERN,
    check_target_sensitivity,
    default_version_name,
    is_h5_path,
    is_valid_version_name,
    parse_weights,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_target_sensitivity_bounds_are_half_open() -> None:
    assert (TARGET_SENSITIVITY_MIN, TARGET_SENSITIVITY_MAX) == (0.5, 1.0)


@pytest.mark.parametrize("value", [0.5, 0.8, 0.95, 0.999, 1 - 1e-12, np.float64(0.9), np.float32(0.75)])
def test_target_sensitivity_in_range_is_returned_as_float(value: float) -> None:
    result = check_target_sensitivity(value)
    assert type(result) is float and result == pytest.approx(float(value))


def test_an_integer_target_is_a_number_but_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"must be in \[0.5, 1\)"):
        check_target_sensitivity(1)


@pytest.mark.parametrize("value", [0.0, 0.4999, 1.0, 1.5, -0.9, math.inf, -math.inf])
def test_target_sensitivity_out_of_range_is_refused_with_the_value(value: float) -> None:
    with pytest.raises(ValueError, match=r"Target sensitivity must be in \[0.5, 1\)") as info:
        check_target_sensitivity(value)
    message = str(info.value)
    assert "target" in message  # lowercase too: callers and tests match on it
    assert f"Received: {value}" in message


def test_the_out_of_range_message_explains_why_one_is_excluded() -> None:
    with pytest.raises(ValueError) as info:
        check_target_sensitivity(0.0)
    assert str(info.value) == (
        "Target sensitivity must be in [0.5, 1): a target of 1 would only fit the threshold to the lowest "
        "positive score. Received: 0.0"
    )


def test_nan_target_sensitivity_is_refused() -> None:
    with pytest.raises(ValueError, match="Target sensitivity"):
        check_target_sensitivity(math.nan)


@pytest.mark.parametrize("value", ["0.9", None, True, False, [0.9], b"0.9"])
def test_target_sensitivity_that_is_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"must be a number\. Received: "):
        check_target_sensitivity(value)


@pytest.mark.parametrize(
    "name", ["v1", "resnet50-v7", "ward_v2.1", "v20250101-120000", "A", "9", "a" * 100, "demo-untrained"]
)
def test_plain_version_names_are_valid(name: str) -> None:
    assert is_valid_version_name(name)
    assert VERSION_NAME_PATTERN.match(name)


@pytest.mark.parametrize(
    "name",
    ["", "../escape", "../../etc", ".hidden", "-v1", "_v1", "a/b", "a\\b", "with space", "v1\n", "a" * 101, "vé"],
)
def test_names_that_are_not_plain_folder_names_are_invalid(name: str) -> None:
    assert not is_valid_version_name(name)


def test_default_version_name_is_utc_with_a_leading_v() -> None:
    assert default_version_name(dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "v20250102-030405"
    paris_winter = dt.timezone(dt.timedelta(hours=1))
    assert default_version_name(dt.datetime(2025, 1, 2, 4, 4, 5, tzinfo=paris_winter)) == "v20250102-030405"
    assert default_version_name(dt.datetime(2025, 1, 2, 3, 4, 5)) == "v20250102-030405"  # noqa: DTZ001 - naive is UTC


def test_default_version_name_now_is_a_valid_name_of_the_current_utc_time() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = default_version_name()
    after = dt.datetime.now(dt.UTC)
    assert is_valid_version_name(name)
    stamped = dt.datetime.strptime(name, "v%Y%m%d-%H%M%S").replace(tzinfo=dt.UTC)
    assert before <= stamped <= after


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.h5", True),
        ("MODEL.H5", True),
        ("resnet50_notop.hdf5", True),
        ("base.weights.h5", True),
        (Path("/models/notebook.Hdf5"), True),
        ("model.keras", False),
        ("model.h5.bak", False),
        ("h5", False),
        ("folder/", False),
    ],
)
def test_h5_paths_are_recognised_by_suffix_in_any_case(path: str | Path, expected: bool) -> None:
    assert is_h5_path(path) is expected
    assert H5_SUFFIXES == (".h5", ".hdf5")


@pytest.mark.parametrize("value", ["imagenet", "ImageNet", "IMAGENET"])
def test_imagenet_weights_in_any_case(value: str) -> None:
    assert parse_weights(value) == "imagenet"


@pytest.mark.parametrize("value", ["none", "None", "NONE", None])
def test_no_weights_means_random_initialisation(value: str | None) -> None:
    assert parse_weights(value) is None


def test_a_weights_file_path_is_returned_unchanged(tmp_path: Path) -> None:
    weights = tmp_path / "resnet50_notop.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert parse_weights(str(weights)) == str(weights)


@pytest.mark.parametrize("value", ["", " imagenet", "imagenet.h5", "/no/such/weights.h5", "."])
def test_anything_else_is_refused_with_the_value(value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_weights(value)
    assert str(info.value) == (
        f"Weights must be imagenet, none or a path to an existing weights file. Received: {value!r}"
    )


def test_a_folder_is_not_a_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="existing weights file"):
        parse_weights(str(tmp_path))


def test_importing_the_rules_loads_neither_numpy_nor_tensorflow() -> None:
    code = "import sys, mlcore.rules; print(sorted({'numpy', 'tensorflow', 'keras'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
