"""A bounded ``multipart/related`` parser for STOW-RS bodies (RFC 2387 / RFC 2046 framing, PS3.18 §10.5).

The body is already bounded (``PNEUMO_STOW_MAX_BYTES``) and held in a buffer (``bytes`` or an ``mmap``); this finds
the parts by their boundary without copying it and bounds everything else: the number of parts and the size of each
part's headers. Parts are returned as ``(headers, start, end)`` offsets into the buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Protocol

MAX_PARTS = 10_000
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY_LENGTH = 200
DICOM_MEDIA_TYPE = "application/dicom"


class MultipartError(ValueError):
    """The body is not the multipart/related it says it is (400)."""


class UnsupportedContentTypeError(ValueError):
    """The request's content type is not ``multipart/related; type="application/dicom"`` (415)."""


class Buffer(Protocol):
    def find(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def __getitem__(self, index: slice) -> bytes: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # lower-case names
    start: int
    end: int

    @property
    def content_type(self) -> str:
        return _media_type(self.headers.get("content-type", ""))[0]


def _media_type(value: str) -> tuple[str, Message]:
    message = Message()
    message["content-type"] = value
    return message.get_content_type(), message


def stow_boundary(content_type: str) -> str:
    """The boundary of a STOW-RS request's content type; ``UnsupportedContentTypeError`` for any other type.

    ``type`` must be ``application/dicom`` when given (PS3.18 requires it; a missing one is tolerated and every part
    is then checked instead). The DICOM JSON/XML + bulk data forms are not supported.
    """
    media_type, message = _media_type(content_type)
    if media_type != "multipart/related" or "multipart/related" not in content_type.lower():
        raise UnsupportedContentTypeError(f'Expected multipart/related; type="{DICOM_MEDIA_TYPE}"')
    part_type = message.get_param("type")
    if part_type is not None and str(part_type).strip().lower() != DICOM_MEDIA_TYPE:
        raise UnsupportedContentTypeError(f'Only type="{DICOM_MEDIA_TYPE}" is accepted. Received: {part_type}')
    boundary = message.get_param("boundary")
    # RFC 2046 allows 70 characters; Orthanc's DICOMweb client sends 73, so a little more is tolerated.
    if not isinstance(boundary, str) or not 0 < len(boundary) <= MAX_BOUNDARY_LENGTH:
        raise MultipartError("The multipart/related content type has no valid boundary.")
    return boundary


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise MultipartError("A part header line has no colon.")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return headers


def parse_parts(body: Buffer, boundary: str) -> list[Part]:
    """The parts of a multipart body, in order. Raises ``MultipartError`` on broken framing or too many parts."""
    delimiter = b"--" + boundary.encode("latin-1")
    position = body.find(delimiter)
    if position < 0:
        raise MultipartError("The body does not contain its boundary.")
    if position > 0 and body[position - 2 : position] != b"\r\n":
        raise MultipartError("The first boundary is not at the start of a line.")
    parts: list[Part] = []
    length = len(body)
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts  # the close delimiter; an epilogue after it is ignored
        line_end = body.find(b"\r\n", position, min(length, position + 1024))
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise MultipartError("A boundary line is malformed or the body ends without its close delimiter.")
        headers_start = line_end + 2
        headers_end = body.find(b"\r\n\r\n", headers_start - 2, min(length, headers_start + MAX_PART_HEADER_BYTES))
        if headers_end < 0:
            raise MultipartError("A part's headers are missing, too long, or not terminated.")
        headers = _parse_headers(body[headers_start:headers_end])
        content_start = headers_end + 4
        next_delimiter = body.find(b"\r\n" + delimiter, content_start - 2)
        if next_delimiter < 0:
            raise MultipartError("The body ends inside a part (no closing boundary).")
        parts.append(Part(headers=headers, start=content_start, end=max(next_delimiter, content_start)))
        if len(parts) > MAX_PARTS:
            raise MultipartError(f"More than {MAX_PARTS} parts.")
        position = next_delimiter + 2
