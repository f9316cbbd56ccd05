"""The bounded multipart/related parser of STOW-RS."""

from __future__ import annotations

import pytest

from diagnosis.dicomweb.multipart import (
    MAX_PARTS,
    MultipartError,
    UnsupportedContentTypeError,
    parse_parts,
    stow_boundary,
)


def body(*payloads: bytes, boundary: str = "b0und", preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    out = preamble
    for payload in payloads:
        out += b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + payload + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n" + epilogue


def contents(data: bytes, boundary: str = "b0und") -> list[bytes]:
    return [data[p.start : p.end] for p in parse_parts(data, boundary)]


def test_it_splits_parts_exactly_even_when_they_contain_crlf_and_dashes() -> None:
    payloads = [b"\r\n--b0un\r\n", b"", b"x" * 1000, b"x--b0und is not at a line start"]
    assert contents(body(*payloads)) == payloads


def test_preamble_and_epilogue_are_ignored() -> None:
    assert contents(body(b"abc", preamble=b"ignore me\r\n", epilogue=b"trailing")) == [b"abc"]


def test_part_headers_are_read_case_insensitively() -> None:
    data = b"--b\r\nCONTENT-TYPE: application/dicom\r\nX-Other: 1\r\n\r\nDATA\r\n--b--"
    (part,) = parse_parts(data, "b")
    assert part.content_type == "application/dicom" and part.headers["x-other"] == "1"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"no boundary at all", id="no-boundary"),
        pytest.param(b"--b0und\r\nContent-Type: application/dicom\r\n\r\nDATA", id="truncated"),
        pytest.param(b"--b0und\r\nContent-Type: application/dicom", id="headers-unterminated"),
        pytest.param(b"--b0und\r\nno colon here\r\n\r\nDATA\r\n--b0und--", id="bad-header"),
        pytest.param(b"--b0und\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\nDATA\r\n--b0und--", id="huge-headers"),
    ],
)
def test_broken_framing_is_refused(data: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_parts(data, "b0und")


def test_the_number_of_parts_is_bounded() -> None:
    with pytest.raises(MultipartError, match="parts"):
        parse_parts(body(*([b"x"] * (MAX_PARTS + 1))), "b0und")


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ('multipart/related; type="application/dicom"; boundary=abc', "abc"),
        ('Multipart/Related; boundary="a b:c"; type=application/dicom', "a b:c"),
        ("multipart/related; boundary=abc", "abc"),  # no type: every part is checked instead
    ],
)
def test_the_boundary_is_read_from_the_content_type(content_type: str, boundary: str) -> None:
    assert stow_boundary(content_type) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "application/json",
        'multipart/related; type="application/dicom+xml"; boundary=abc',
        "multipart/form-data; boundary=abc",
        "",
    ],
)
def test_other_content_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedContentTypeError):
        stow_boundary(content_type)


def test_a_missing_boundary_is_a_malformed_request() -> None:
    with pytest.raises(MultipartError):
        stow_boundary('multipart/related; type="application/dicom"')


def test_a_long_boundary_as_orthanc_sends_it_is_accepted() -> None:
    boundary = "987b1273-ede2-4a25-83bb-4b17586e10f6-987b1273-ede2-4a25-83bb-4b17586e10f6"  # 73 characters
    assert stow_boundary(f'multipart/related; type="application/dicom"; boundary={boundary}') == boundary
    assert contents(body(b"abc", boundary=boundary), boundary) == [b"abc"]
