"""Loading the real sample radiographs (RSNA and SIIM DICOMs, Kermany JPEGs).

The files live outside the repository and are never copied into it. Set
``PNEUMO_SAMPLE_DATA`` to the data folder (CI: ``../shared/data``); without it
these tests are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mlcore.config import PreprocessingConfig
from mlcore.imaging import load_image_file
from mlcore.preprocessing import preprocess_file

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.fixture(scope="module")
def sample_data() -> Path:
    location = os.environ.get("PNEUMO_SAMPLE_DATA")
    if not location:
        pytest.skip("PNEUMO_SAMPLE_DATA is not set (e.g. PNEUMO_SAMPLE_DATA=../shared/data)")
    root = Path(location).resolve()
    if not root.is_dir():
        pytest.skip(f"PNEUMO_SAMPLE_DATA={location!r} is not a directory")
    return root


def _files(root: Path, pattern: str, minimum: int) -> list[Path]:
    found = sorted(root.glob(pattern))
    if len(found) < minimum:
        pytest.skip(f"expected at least {minimum} files matching {pattern!r} under {root}, found {len(found)}")
    return found


def test_rsna_dicoms_load_as_1024_square_grayscale(sample_data):
    for path in _files(sample_data, "dicom/rsna/*/*.dcm", 16):
        loaded = load_image_file(path)
        assert loaded.format == "dicom" and loaded.dicom is not None, path.name
        assert loaded.pixels.shape == (1024, 1024) and loaded.pixels.dtype == np.uint8, path.name
        assert loaded.dicom.transfer_syntax_uid == JPEG_BASELINE
        assert loaded.dicom.photometric_interpretation == "MONOCHROME2"
        assert loaded.dicom.modality == "CR" and loaded.dicom.view_position in ("PA", "AP")
        assert loaded.dicom.body_part_examined == "CHEST"
        assert loaded.pixels.std() > 20, path.name  # a real image, not a constant fill
        assert 40 < loaded.pixels.mean() < 220, path.name


def test_siim_monochrome1_twin_is_inverted(sample_data):
    """The twin stores the *same pixel bytes* with the header set to MONOCHROME1.

    Bone is dark in MONOCHROME1 data, so loading must invert it: the result is
    the exact negative of the MONOCHROME2 image (the two files' pixel data are
    identical; only the interpretation differs).
    """
    by_photometric = {}
    for path in _files(sample_data, "dicom/siim/*.dcm", 2):
        loaded = load_image_file(path)
        by_photometric[loaded.dicom.photometric_interpretation] = loaded.pixels
    mono1, mono2 = by_photometric["MONOCHROME1"], by_photometric["MONOCHROME2"]
    assert mono1.shape == mono2.shape == (1024, 1024)
    np.testing.assert_array_equal(mono1, 255 - mono2)
    assert abs(float(mono1.mean()) - float(mono2.mean())) > 30  # it was not left as stored


def test_full_resolution_jpegs_load_upright_and_match_their_224_copies(sample_data):
    """The 224 px dataset is the same images squashed; our loader must agree with it (orientation, gray levels)."""
    paths = _files(sample_data, "chest_xray_fullres/train/NORMAL/*.jpeg", 3)[:3]
    paths += _files(sample_data, "chest_xray_fullres/train/PNEUMONIA/*.jpeg", 3)[:3]
    for path in paths:
        loaded = load_image_file(path)
        with Image.open(path) as image:
            assert loaded.pixels.shape == (image.height, image.width), path.name
        twin = sample_data / "chest_xray_224" / path.relative_to(sample_data / "chest_xray_fullres")
        if not twin.exists():
            continue
        small = load_image_file(twin).pixels
        shrunk = cv2.resize(loaded.pixels, (224, 224), interpolation=cv2.INTER_AREA)
        assert np.corrcoef(shrunk.ravel(), small.ravel())[0, 1] > 0.98, path.name
        assert np.abs(shrunk.astype(np.int16) - small).mean() < 6, path.name


def test_224_jpegs_preprocess_to_the_model_input(sample_data):
    config = PreprocessingConfig()
    for path in _files(sample_data, "chest_xray_224/train/*/*.jpeg", 10)[::500][:10]:
        assert load_image_file(path).pixels.shape == (224, 224)
        model_input = preprocess_file(path, config)
        assert model_input.shape == (384, 384, 3) and model_input.dtype == np.float32
        assert model_input.min() >= 0.0 and model_input.max() <= 1.0


def test_rsna_dicom_preprocesses_to_the_model_input(sample_data):
    path = _files(sample_data, "dicom/rsna/PNEUMONIA/*.dcm", 1)[0]
    model_input = preprocess_file(path, PreprocessingConfig())
    assert model_input.shape == (384, 384, 3) and model_input.dtype == np.float32
    assert model_input.std() > 0.1
