"""Tests for mlcore.preprocessing and mlcore.config: the single training/inference preprocessing path."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from mlcore.config import PreprocessingConfig
from mlcore.errors import ImageError
from mlcore.imaging import load_image
from mlcore.preprocessing import (
    apply_clahe,
    preprocess_bytes,
    preprocess_file,
    preprocess_pixels,
    resize_interpolation,
    to_three_channels,
)

# --- apply_clahe ---------------------------------------------------------------


def test_clahe_matches_opencv_with_the_spec_parameters(chest_like):
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(chest_like)
    result = apply_clahe(chest_like)
    np.testing.assert_array_equal(result, expected)
    assert not np.array_equal(result, chest_like)  # it really changed the contrast


def test_clahe_passes_its_parameters_through(chest_like):
    expected = cv2.createCLAHE(clipLimit=4.0, tileGridSize=(4, 6)).apply(chest_like)
    result = apply_clahe(chest_like, clip_limit=4.0, tile_grid_size=(4, 6))
    np.testing.assert_array_equal(result, expected)
    assert not np.array_equal(result, apply_clahe(chest_like))


@pytest.mark.parametrize("value", [0, 77, 255])
def test_clahe_returns_a_constant_image_unchanged(value):
    image = np.full((40, 50), value, np.uint8)
    result = apply_clahe(image)
    np.testing.assert_array_equal(result, image)
    assert result is not image


@pytest.mark.parametrize(
    ("image", "kwargs"),
    [
        (np.zeros((40, 40), np.float32), {}),
        (np.zeros((40, 40, 3), np.uint8), {}),
        (np.zeros((0, 40), np.uint8), {}),
        (np.zeros((40, 40), np.uint16), {}),
        (np.arange(1600, dtype=np.uint8).reshape(40, 40), {"clip_limit": 0}),
        (np.arange(1600, dtype=np.uint8).reshape(40, 40), {"tile_grid_size": (0, 8)}),
    ],
)
def test_clahe_refuses_bad_input(image, kwargs):
    with pytest.raises(ValueError, match="Received"):
        apply_clahe(image, **kwargs)


def test_to_three_channels_repeats_the_image():
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    result = to_three_channels(image)
    assert result.shape == (2, 3, 3) and result.flags.c_contiguous
    for channel in range(3):
        np.testing.assert_array_equal(result[:, :, channel], image)


# --- resizing rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source_hw", "size", "interpolation", "flag"),
    [
        ((1024, 1024), 384, "area", cv2.INTER_AREA),
        ((384, 384), 384, "area", cv2.INTER_AREA),
        ((300, 500), 384, "area", cv2.INTER_LINEAR),  # one side grows
        ((224, 224), 384, "area", cv2.INTER_LINEAR),
        ((1024, 1024), 384, "linear", cv2.INTER_LINEAR),
        ((1024, 1024), 384, "cubic", cv2.INTER_CUBIC),
    ],
)
def test_resize_interpolation_rule(source_hw, size, interpolation, flag):
    assert resize_interpolation(source_hw, size, interpolation) == flag


# --- preprocess_pixels -------------------------------------------------------------


@pytest.mark.parametrize(("shape", "size", "flag"), [((96, 80), 64, cv2.INTER_AREA), ((40, 36), 64, cv2.INTER_LINEAR)])
def test_preprocess_pixels_follows_the_spec_order(chest_like, shape, size, flag):
    gray = cv2.resize(chest_like, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    # grayscale -> CLAHE(2.0, 8x8) -> 3 channels -> /255 -> resize -> clip, written out by hand
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
    stacked = np.dstack([clahe, clahe, clahe]).astype(np.float32) / 255.0
    expected = np.clip(cv2.resize(stacked, (size, size), interpolation=flag), 0, 1)
    result = preprocess_pixels(gray, PreprocessingConfig(image_size=size))
    assert result.shape == (size, size, 3) and result.dtype == np.float32 and result.flags.c_contiguous
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-7)


def test_preprocess_pixels_output_contract(chest_like):
    result = preprocess_pixels(chest_like, PreprocessingConfig())
    assert result.shape == (384, 384, 3) and result.dtype == np.float32
    assert result.min() >= 0.0 and result.max() <= 1.0
    assert result[..., 0].std() > (chest_like / 255).std()  # CLAHE raised the contrast
    np.testing.assert_array_equal(result[..., 0], result[..., 1])
    np.testing.assert_array_equal(result[..., 0], result[..., 2])


def test_cubic_overshoot_is_clipped_to_unit_range():
    checkerboard = (np.indices((40, 40)).sum(axis=0) % 2 * 255).astype(np.uint8)
    result = preprocess_pixels(checkerboard, PreprocessingConfig(image_size=97, interpolation="cubic"))
    unclipped = cv2.resize(checkerboard.astype(np.float32) / 255, (97, 97), interpolation=cv2.INTER_CUBIC)
    assert unclipped.min() < 0 and unclipped.max() > 1  # the case being tested exists
    assert result.min() >= 0.0 and result.max() <= 1.0


def test_constant_image_gives_a_constant_input():
    result = preprocess_pixels(np.full((50, 60), 51, np.uint8), PreprocessingConfig(image_size=32))
    np.testing.assert_allclose(result, 51 / 255, rtol=0, atol=1e-7)


@pytest.mark.parametrize("image", [np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.float32)])
def test_preprocess_pixels_refuses_non_gray_input(image):
    with pytest.raises(ValueError, match="Received"):
        preprocess_pixels(image, PreprocessingConfig())


# --- bytes / file parity -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["png", "jpeg", "dicom"])
def test_bytes_and_file_paths_give_identical_inputs(tmp_path, chest_like, make_png, make_jpeg, make_dicom, kind):
    data = {"png": make_png, "jpeg": make_jpeg, "dicom": make_dicom}[kind](chest_like)
    path = tmp_path / "image.bin"  # the name carries no format on purpose
    path.write_bytes(data)
    config = PreprocessingConfig(image_size=64)
    from_bytes, loaded = preprocess_bytes(data, config)
    np.testing.assert_array_equal(from_bytes, preprocess_file(path, config))
    np.testing.assert_array_equal(loaded.pixels, load_image(data).pixels)
    assert loaded.format == kind


def test_preprocess_bytes_enforces_max_pixels(make_png, chest_like):
    with pytest.raises(ImageError):
        preprocess_bytes(make_png(chest_like), PreprocessingConfig(), max_pixels=96 * 80 - 1)


# --- PreprocessingConfig ---------------------------------------------------------------


def test_config_defaults_match_the_spec():
    config = PreprocessingConfig()
    assert config.to_dict() == {
        "image_size": 384,
        "clahe_clip_limit": 2.0,
        "clahe_tile_grid": [8, 8],
        "channels": 3,
        "interpolation": "area",
        "schema_version": 1,
    }
    config.validate()


def test_config_round_trips_through_json():
    config = PreprocessingConfig(image_size=224, clahe_clip_limit=3.5, clahe_tile_grid=(4, 6), interpolation="cubic")
    assert PreprocessingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PreprocessingConfig().image_size = 224  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"resize_mode": "pad"}, "Unknown"),
        ({"schema_version": 2}, "schema_version"),
        ({"image_size": 31}, "image_size"),
        ({"image_size": True}, "image_size"),
        ({"image_size": 384.0}, "image_size"),
        ({"clahe_clip_limit": 0}, "clahe_clip_limit"),
        ({"clahe_clip_limit": float("nan")}, "clahe_clip_limit"),
        ({"clahe_tile_grid": [0, 8]}, "clahe_tile_grid"),
        ({"clahe_tile_grid": [8, 8, 8]}, "clahe_tile_grid"),
        ({"clahe_tile_grid": 8}, "clahe_tile_grid"),
        ({"channels": 1}, "channels"),
        ({"interpolation": "nearest"}, "interpolation"),
    ],
)
def test_config_from_dict_refuses_bad_data(change, match):
    data = {**PreprocessingConfig().to_dict(), **change}
    with pytest.raises(ValueError, match=match) as info:
        PreprocessingConfig.from_dict(data)
    assert "Received" in str(info.value)


def test_config_from_dict_refuses_missing_keys():
    data = PreprocessingConfig().to_dict()
    del data["clahe_clip_limit"]
    with pytest.raises(ValueError, match="Missing"):
        PreprocessingConfig.from_dict(data)
