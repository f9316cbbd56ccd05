"""Walk the marker segments of a JPEG (ITU-T T.81) or JPEG-LS (T.87) codestream without decoding any pixel.

Two readers, both bounded in work:

* :func:`read_frame_header` stops at the first start-of-frame segment: the dimensions a decoder will allocate for.
* :func:`read_jpeg_layout` walks the whole T.81 codestream (skipping entropy-coded data with a C-speed search) up to
  its end-of-image marker, and reports every frame header on the way and where the image ends. Uploads use it to
  refuse a file with two different frame headers (Pillow sizes the image from the last one, the header check read the
  first) and to accept bytes after a complete image, which some writers append.

A file of millions of tiny segments would make any marker walk slow: both readers stop after
:data:`MAX_SEGMENTS` segments (real files have a few dozen).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from mlcore.errors import CorruptImageError

#: Start-of-frame markers of T.81: baseline, extended, progressive, lossless, hierarchical, arithmetic.
#: C4 (DHT), C8 (JPG, reserved) and CC (DAC) sit in the same range but are not frame headers.
JPEG_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
#: SOF55, the JPEG-LS frame header (T.87).
JPEG_LS_SOF_MARKERS = frozenset({0xF7})
#: Far above any real file (a progressive JPEG has a few dozen segments) and small enough to walk in milliseconds.
MAX_SEGMENTS = 4096

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# Markers without a length field: TEM and the restart markers (SOI and EOI are handled on their own).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# In T.81 entropy-coded data 0xFF is followed by a stuffed 0x00 or a restart marker; anything else is a marker.
# A run of 0xFF fill bytes is matched at its first byte, which the walker then skips.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")


@dataclass(frozen=True)
class JpegFrameHeader:
    """The fields of a start-of-frame segment that size the decoded image.

    Attributes:
        marker: The SOF marker's second byte (``0xC0`` baseline, ``0xC2`` progressive, ``0xF7`` JPEG-LS, ...).
        precision: Bits per sample.
        height: Number of lines (0 means "defined later by a DNL marker").
        width: Samples per line.
        components: Number of image components.
    """

    marker: int
    precision: int
    height: int
    width: int
    components: int


@dataclass(frozen=True)
class JpegLayout:
    """The structure of a complete T.81 codestream.

    Attributes:
        frames: Every start-of-frame segment, in file order (a valid file has exactly one).
        end: Offset just past the end-of-image marker; bytes from there on are not part of the image.
    """

    frames: tuple[JpegFrameHeader, ...]
    end: int


def read_frame_header(data: bytes, *, sof_markers: frozenset[int] = JPEG_SOF_MARKERS) -> JpegFrameHeader:
    """Return the first start-of-frame segment of a JPEG or JPEG-LS codestream.

    Args:
        data: The codestream, starting with its SOI marker.
        sof_markers: :data:`JPEG_SOF_MARKERS` or :data:`JPEG_LS_SOF_MARKERS`.

    Raises:
        CorruptImageError: No SOI, a damaged or truncated segment, image data before any frame header, or more
            than :data:`MAX_SEGMENTS` segments before it.
    """
    if not data.startswith(b"\xff\xd8"):
        raise CorruptImageError("The JPEG data does not start with a start-of-image marker.")
    pos = 2
    for _ in range(MAX_SEGMENTS):
        marker, pos = _next_marker(data, pos)
        if marker in _STANDALONE:
            continue
        if marker in (_SOI, _EOI, _SOS):
            raise CorruptImageError("The JPEG data is damaged: its image data starts before its frame header.")
        length = _segment_length(data, pos)
        if marker in sof_markers:
            return _frame_header(data, marker, pos, length)
        pos += length
    raise _too_many_segments()


def read_jpeg_layout(data: bytes) -> JpegLayout:
    """Walk a whole T.81 JPEG file up to its end-of-image marker.

    Args:
        data: The file, starting with its SOI marker.

    Returns:
        Every frame header and where the image ends (see :class:`JpegLayout`).

    Raises:
        CorruptImageError: Damaged segments, no frame header, no end-of-image marker (truncated), or more than
            :data:`MAX_SEGMENTS` segments.
    """
    if not data.startswith(b"\xff\xd8"):
        raise CorruptImageError("The JPEG file does not start with a start-of-image marker.")
    frames: list[JpegFrameHeader] = []
    pos = 2
    for _ in range(MAX_SEGMENTS):
        marker, pos = _next_marker(data, pos)
        if marker == _EOI:
            if not frames:
                raise CorruptImageError("The JPEG file is damaged: it ends before any frame header.")
            return JpegLayout(frames=tuple(frames), end=pos)
        if marker in _STANDALONE:
            continue
        if marker == _SOI:
            raise CorruptImageError("The JPEG file is damaged: a second start-of-image marker inside the image.")
        length = _segment_length(data, pos)
        if marker in JPEG_SOF_MARKERS:
            frames.append(_frame_header(data, marker, pos, length))
        pos += length
        if marker == _SOS:
            if not frames:
                raise CorruptImageError("The JPEG file is damaged: its image data starts before its frame header.")
            pos = _skip_entropy_coded_data(data, pos)
    raise _too_many_segments()


def _next_marker(data: bytes, pos: int) -> tuple[int, int]:
    """Return ``(marker, offset after it)`` for the marker at ``pos``; fill bytes (0xFF) may pad any marker."""
    end = len(data)
    if pos >= end:
        raise CorruptImageError("The JPEG data is truncated (it ends before its end-of-image marker).")
    if data[pos] != 0xFF:
        raise CorruptImageError("The JPEG data is damaged (a segment is not followed by a marker).")
    while pos < end and data[pos] == 0xFF:
        pos += 1
    if pos >= end:
        raise CorruptImageError("The JPEG data is truncated (it ends inside a marker).")
    return data[pos], pos + 1


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise CorruptImageError("The JPEG data is truncated inside a segment header.")
    (length,) = struct.unpack(">H", data[pos : pos + 2])
    if length < 2 or pos + length > len(data):
        raise CorruptImageError("The JPEG data is damaged or truncated (a segment length runs past its end).")
    return int(length)


def _frame_header(data: bytes, marker: int, pos: int, length: int) -> JpegFrameHeader:
    if length < 8:
        raise CorruptImageError("The JPEG data is damaged (its frame header is too short).")
    precision, height, width, components = struct.unpack(">BHHB", data[pos + 2 : pos + 8])
    return JpegFrameHeader(marker=marker, precision=precision, height=height, width=width, components=components)


def _skip_entropy_coded_data(data: bytes, pos: int) -> int:
    match = _NEXT_MARKER.search(data, pos)
    if match is None:
        raise CorruptImageError("The JPEG file is truncated (no end-of-image marker).")
    return match.start()


def _too_many_segments() -> CorruptImageError:
    return CorruptImageError(
        f"The JPEG data has more than {MAX_SEGMENTS:,} marker segments, far more than any real image; it was refused "
        "without decoding."
    )


def check_jpeg_file(data: bytes) -> JpegFrameHeader:
    """Refuse a JPEG file that is truncated or has more than one frame header; return its frame header.

    The upload check and the worker's decoder both call this, so a file is refused with the same words in both.
    Bytes after the end-of-image marker are ignored: the image before them is complete.

    Raises:
        CorruptImageError: See :func:`read_jpeg_layout`, or several frame headers.
    """
    layout = read_jpeg_layout(data)
    if len(layout.frames) > 1:
        sizes = " and ".join(f"{frame.width} x {frame.height}" for frame in layout.frames[:3])
        raise CorruptImageError(
            f"The JPEG file is damaged: it has {len(layout.frames)} frame headers ({sizes}) where an image has one."
        )
    return layout.frames[0]
