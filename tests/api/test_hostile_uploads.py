"""Hostile and odd uploads through the real API endpoint: never a 5xx, and a refusal stores nothing.

Issue 8 lists what already held ("30 hostile and odd files give 0 x 5xx ... 24 more: polyglots, bombs, headers up
to 65535², filenames with path traversal, unicode or 10,000 characters, bad multipart, a 100 MB body") and what did
not: DICOMs whose compressed frames lie about their size (point 2), the PNG chunk bomb (point 5), and the odd inputs
of point 6. ``tests/api/test_study_upload.py`` already covers the empty file, a text file, a truncated DICOM, a DICOM
without pixels, a 30000² PNG header, a truncated PNG, an oversized file and body, a missing or non-file field, an
overlong patient id and a JSON body; this module covers the rest.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, Study
from tests.factories import jpeg_bytes, png_bytes, png_header_only
from tests.hostile_files import (
    dicom_with_frames,
    frame_for,
    jp2_wrap,
    jpeg_frame,
    patch_rle_segments,
    patch_siz,
    patch_sof,
    png_chunk_bomb,
    two_sof_jpeg,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("serving_model_version", "enqueue")]

URL = "/api/v1/studies/"


def _ct_small(**changes: Any) -> bytes:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    preamble = changes.pop("preamble", None)
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    if preamble is not None:
        dataset.preamble = preamble
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _png_ihdr(width: int, height: int) -> bytes:
    return png_header_only(width, height)


def _jpeg_sof(width: int, height: int) -> bytes:
    return patch_sof(jpeg_frame(64, 64), width, height)


def _jpeg_segment_bomb() -> bytes:
    data = jpeg_frame(64, 48)
    return data[:2] + b"\xff\xfe\x00\x02" * 5000 + data[2:]


def _gifar() -> bytes:
    return b"GIF89a\x01\x00\x01\x00\x00\x00\x00;" + b"PK\x03\x04" + b"\0" * 200


def _refused_dicoms() -> list[tuple[str, bytes, str]]:
    jpeg, jls, j2k = frame_for(JPEGBaseline8Bit), frame_for(JPEGLSLossless), frame_for(JPEG2000Lossless)
    return [
        (
            "dicom-jpeg-sof-20000",
            dicom_with_frames([patch_sof(jpeg, 20000, 20000)], transfer_syntax=JPEGBaseline8Bit),
            "compressed frame 1 is 20000 x 20000 pixels but its header (Rows/Columns) says 1024 x 1024",
        ),
        (
            "dicom-jpeg-sof-65500",
            dicom_with_frames([patch_sof(jpeg, 65500, 65500)], transfer_syntax=JPEGBaseline8Bit),
            "compressed frame 1 is 65500 x 65500 pixels",
        ),
        (
            "dicom-jpeg-ls-sof55",
            dicom_with_frames([patch_sof(jls, 20000, 20000, sof_markers={0xF7})], transfer_syntax=JPEGLSLossless),
            "compressed frame 1 is 20000 x 20000 pixels",
        ),
        (
            "dicom-jpeg2000-siz",
            dicom_with_frames([patch_siz(j2k, 65500, 65500)], transfer_syntax=JPEG2000Lossless),
            "compressed frame 1 is 65500 x 65500 pixels",
        ),
        (
            "dicom-jp2-siz",
            dicom_with_frames([jp2_wrap(patch_siz(j2k, 20000, 20000), 1024, 1024)], transfer_syntax=JPEG2000Lossless),
            "compressed frame 1 is 20000 x 20000 pixels",
        ),
        (
            "dicom-rle-segments",
            dicom_with_frames([patch_rle_segments(frame_for(RLELossless), 4)], transfer_syntax=RLELossless),
            "RLE frame 1 has 4 segments",
        ),
        (
            "dicom-two-frames-one-declared",
            dicom_with_frames([jpeg, jpeg], transfer_syntax=JPEGBaseline8Bit, has_bot=True),
            "holds 2 frame(s) but its header (Number of Frames) says 1",
        ),
        (
            "dicom-unreadable-frame-header",
            dicom_with_frames([b"\x00" * 512], transfer_syntax=JPEGBaseline8Bit),
            "the header of its compressed frame 1 cannot be read",
        ),
    ]


# (id, content, file name, status, words the detail must contain)
REFUSED: list[tuple[str, bytes, str, int, str]] = [
    *((name, data, "IMG0001.dcm", 400, detail) for name, data, detail in _refused_dicoms()),
    ("png-chunk-bomb", png_chunk_bomb(400_000), "chest.png", 400, "more than 16,384 chunks"),
    ("jpeg-segment-bomb", _jpeg_segment_bomb(), "chest.jpg", 400, "more than 4,096 marker segments"),
    (
        "jpeg-two-frame-headers",
        two_sof_jpeg(64, 48, (4000, 3000)),
        "chest.jpg",
        400,
        "2 frame headers (64 x 48 and 4000 x 3000)",
    ),
    ("png-header-65535-squared", _png_ihdr(65535, 65535), "chest.png", 413, "The image is 65535 x 65535 pixels"),
    ("png-header-2-to-31", _png_ihdr(2**31 - 1, 2**31 - 1), "chest.png", 413, "the limit is 50,000,000 pixels"),
    ("jpeg-header-65535-squared", _jpeg_sof(65535, 65535), "chest.jpg", 413, "The image is 65535 x 65535 pixels"),
    (
        "dicom-header-65535-squared",
        _ct_small(Rows=65535, Columns=65535),
        "IMG0001",
        413,
        "The image is 65535 x 65535 pixels",
    ),
    ("png-zero-width", _png_ihdr(0, 512), "chest.png", 400, "no pixels"),
    ("gifar-polyglot", _gifar(), "chest.png", 415, "GIF image"),
    ("pdf-with-jpeg-inside", b"%PDF-1.4\n" + jpeg_bytes(64, 64), "chest.jpg", 415, "PDF document"),
    ("zip-named-dcm", b"PK\x03\x04" + b"\0" * 300, "IMG0001.dcm", 415, "ZIP archive"),
    ("html-named-png", b"<html><script>alert(1)</script></html>\n" * 8, "chest.png", 415, "text file"),
    (
        "svg-with-script",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "chest.svg",
        415,
        "not a PNG, JPEG or DICOM",
    ),
    ("png-signature-only", b"\x89PNG\r\n\x1a\n", "chest.png", 400, "truncated"),
    ("jpeg-soi-only", b"\xff\xd8\xff", "chest.jpg", 400, "truncated"),
    ("dicm-without-dataset", b"\0" * 128 + b"DICM", "IMG0001", 400, "DICOM"),
]

# (id, content, file name) of odd files that are valid radiographs: accepted (202) and stored under our own name.
ACCEPTED: list[tuple[str, bytes, str]] = [
    ("png-with-zip-appended", png_bytes(64, 64) + b"PK\x03\x04" + b"\0" * 300, "chest.png"),
    ("jpeg-with-html-appended", jpeg_frame(64, 64) + b"<html><script>alert(1)</script></html>", "chest.jpg"),
    ("jpeg-with-10-kb-after-its-end-marker", jpeg_frame(640, 480) + b"\0" * 10_000, "chest.jpg"),
    ("dicom-with-html-preamble", _ct_small(preamble=b"<html><script>alert(1)</script>".ljust(128, b" ")), "IMG0001"),
    ("path-traversal-name", png_bytes(64, 64), "../../../../etc/passwd.png"),
    ("windows-traversal-name", png_bytes(64, 64), "..\\..\\..\\boot.ini.png"),
    ("absolute-path-name", png_bytes(64, 64), "/var/lib/pneumoweb/storage/evil.png"),
    ("unicode-name", png_bytes(64, 64), "胸部X線写真 🫁 ﷽.png"),
    ("right-to-left-override-name", png_bytes(64, 64), "chest\u202egnp.exe"),
    ("ten-thousand-character-name", png_bytes(64, 64), "a" * 10_000 + ".png"),
]


@pytest.fixture
def nothing_stored(stored_files: Callable[[], set[Path]]) -> Callable[[], None]:
    before = stored_files()

    def check() -> None:
        assert not Study.objects.exists()
        assert stored_files() == before
        assert not AuditEvent.objects.filter(action="study.uploaded").exists()

    return check


def _upload(client: APIClient, content: bytes, name: str) -> Any:
    file = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(URL, {"file": file}, format="multipart")


@pytest.mark.parametrize(
    ("content", "name", "status", "detail"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_a_hostile_file_is_refused_with_a_reason_and_nothing_is_stored(
    integrator_client: APIClient,
    nothing_stored: Callable[[], None],
    content: bytes,
    name: str,
    status: int,
    detail: str,
) -> None:
    response = _upload(integrator_client, content, name)

    assert response.status_code == status, response.content
    assert detail in response.json()["detail"]
    nothing_stored()


@pytest.mark.parametrize(("content", "name"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_an_odd_but_valid_file_is_accepted_and_stored_under_our_own_name(
    integrator_client: APIClient, storage_dir: Path, content: bytes, name: str
) -> None:
    response = _upload(integrator_client, content, name)

    assert response.status_code == 202, response.content
    study = Study.objects.get()
    stored = Path(study.file.path).resolve()
    assert stored.is_relative_to(storage_dir.resolve())
    assert stored.name == "original"
    assert stored.read_bytes() == content
    assert len(study.original_filename) <= 255


def test_patient_id_from_a_dicom_is_cleaned_of_control_characters(integrator_client: APIClient) -> None:
    data = _ct_small(PatientID="PAT\r\n-\x07\x7f42\t")

    response = _upload(integrator_client, data, "IMG0001")

    assert response.status_code == 202, response.content
    study = Study.objects.get()
    assert study.patient_id == "PAT-42"
    assert study.dicom_metadata["patient_id"] == "PAT-42"


_PART = b'Content-Disposition: form-data; name="file"; filename="chest.png"\r\nContent-Type: image/png\r\n\r\n'
BAD_MULTIPART = {
    "wrong-boundary": (
        b"--other\r\n" + _PART + png_bytes() + b"\r\n--other--\r\n",
        "multipart/form-data; boundary=expected",
    ),
    "truncated-body": (b"--b\r\n" + _PART + png_bytes()[:50], "multipart/form-data; boundary=b"),
    "no-boundary-parameter": (b"--b\r\n" + _PART + png_bytes() + b"\r\n--b--\r\n", "multipart/form-data"),
    "empty-boundary": (b"--\r\n" + _PART + png_bytes() + b"\r\n----\r\n", "multipart/form-data; boundary="),
    "binary-garbage": (bytes(range(256)) * 40, "multipart/form-data; boundary=b"),
    "part-without-headers": (b"--b\r\n\r\n" + png_bytes() + b"\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    "header-without-end": (
        b'--b\r\nContent-Disposition: form-data; name="file"' + b"x" * 5000,
        "multipart/form-data; boundary=b",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MULTIPART))
def test_a_malformed_multipart_body_is_a_4xx_and_stores_nothing(
    integrator_client: APIClient, nothing_stored: Callable[[], None], case: str
) -> None:
    body, content_type = BAD_MULTIPART[case]

    response = integrator_client.generic("POST", URL, body, content_type=content_type)

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["detail"]
    nothing_stored()


def test_a_100_mb_body_is_refused_with_413_and_nothing_is_stored(
    integrator_client: APIClient, nothing_stored: Callable[[], None]
) -> None:
    body = b"--b\r\n" + _PART + b"\0" * (100 * 1024 * 1024) + b"\r\n--b--\r\n"

    response = integrator_client.generic("POST", URL, body, content_type="multipart/form-data; boundary=b")

    assert response.status_code == 413, response.content
    assert response.json()["detail"].startswith("The upload is 104.9 MB; the limit is")
    nothing_stored()


def test_png_chunks_are_counted_not_sized(integrator_client: APIClient) -> None:
    # Many real encoders split image data into small IDAT chunks: a few thousand chunks must still pass.
    response = _upload(integrator_client, png_chunk_bomb(5000), "chest.png")
    assert response.status_code == 202, response.content
