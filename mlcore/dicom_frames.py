"""Check the frames of compressed (encapsulated) DICOM pixel data against the image header, before any decode.

A DICOM file's *Rows* and *Columns* say nothing about what its compressed frames will decode to: each JPEG,
JPEG-LS or JPEG 2000 frame carries its own size, and that is the size its decoder allocates. A 156 KB file that
declares 1024 x 1024 but holds a JPEG whose frame header says 65500 x 65500 makes libjpeg ask for 4.3 GB. So every
frame's own header is read here, with no decoder involved, and the file is refused when:

* the number of frames found differs from *Number of Frames* (1 when absent);
* a frame's header cannot be read (truncated, damaged, not the codec the transfer syntax names);
* a frame's size differs from *Rows* x *Columns*, or its number of components from *Samples per Pixel*;
* a frame's size exceeds the pixel limit;
* an RLE frame's segment count differs from *Samples per Pixel* x ceil(*Bits Allocated* / 8).

The upload check (web process) and :func:`mlcore.dicom.read_dicom` (worker, just before decoding) both call
:func:`check_encapsulated_frames`, so a file that reached storage some other way is refused with the same words.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.encaps import generate_fragments, generate_frames, parse_basic_offsets
from pydicom.uid import UID

from mlcore.errors import CorruptImageError, ImageTooLargeError, UnsupportedDicomError
from mlcore.jpeg_markers import JPEG_LS_SOF_MARKERS, JPEG_SOF_MARKERS, read_frame_header

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

JPEG_SYNTAXES = frozenset(
    {f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 70)}
)
JPEG_LS_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
#: JPEG 2000 Part 1 and 2, and High-Throughput JPEG 2000 (same SIZ header).
JPEG_2000_SYNTAXES = frozenset({f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203)})
RLE_SYNTAX = "1.2.840.10008.1.2.5"

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
# A JP2 file has a handful of boxes before its codestream; more is not a radiograph.
_MAX_JP2_BOXES = 64
_RLE_HEADER_BYTES = 64


@dataclass(frozen=True)
class FrameSize:
    """What one compressed frame's own header says it decodes to."""

    width: int
    height: int
    components: int


def check_encapsulated_frames(ds: Dataset, *, max_pixels: int) -> None:
    """Refuse compressed pixel data whose frames do not match the dataset's image header (see the module docstring).

    Does nothing for native (uncompressed) pixel data, whose length is checked elsewhere.

    Args:
        ds: A dataset read with its pixel data.
        max_pixels: The pixel limit each frame must respect.

    Raises:
        CorruptImageError: Frame count or size mismatch, unreadable frame header.
        ImageTooLargeError: A frame above the pixel limit.
        UnsupportedDicomError: A compressed transfer syntax whose frame headers this module cannot read.
    """
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID") or "")
    if transfer_syntax not in JPEG_SYNTAXES | JPEG_LS_SYNTAXES | JPEG_2000_SYNTAXES | {RLE_SYNTAX}:
        if transfer_syntax and UID(transfer_syntax).is_compressed:
            raise UnsupportedDicomError(f"DICOM images compressed as {transfer_syntax} are not supported.")
        return
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel") or 1)
    declared = int(ds.get("NumberOfFrames") or 1)
    frames = _frames(bytes(ds.PixelData), declared=declared, ds=ds, rle=transfer_syntax == RLE_SYNTAX)
    for number, frame in enumerate(frames, start=1):
        if transfer_syntax == RLE_SYNTAX:
            _check_rle(frame, number=number, samples=samples, bits_allocated=int(ds.get("BitsAllocated") or 8))
            continue
        size = _frame_size(frame, transfer_syntax, number=number)
        if (size.width, size.height) != (columns, rows):
            raise CorruptImageError(
                f"The DICOM file is refused: its compressed frame {number} is {size.width} x {size.height} pixels "
                f"but its header (Rows/Columns) says {columns} x {rows}."
            )
        if size.width * size.height > max_pixels:
            raise ImageTooLargeError(size.width, size.height, max_pixels)
        if size.components != samples:
            raise CorruptImageError(
                f"The DICOM file is refused: its compressed frame {number} has {size.components} components but "
                f"its header (Samples per Pixel) says {samples}."
            )


def _frames(pixel_data: bytes, *, declared: int, ds: Dataset, rle: bool) -> list[bytes]:
    """The frames of encapsulated pixel data, refusing any disagreement with *Number of Frames*."""
    try:
        stream = io.BytesIO(pixel_data)
        basic_offsets = parse_basic_offsets(stream)
        fragments = list(generate_fragments(stream))
        extended = None
        if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
            extended = (bytes(ds.ExtendedOffsetTable), bytes(ds.ExtendedOffsetTableLengths))
            found = len(extended[0]) // 8
        elif basic_offsets:
            found = len(basic_offsets)
        else:
            found = _frames_without_offset_table(fragments, declared=declared, rle=rle)
        if found != declared:
            raise _frame_count_mismatch(found=found, declared=declared)
        frames = list(generate_frames(pixel_data, number_of_frames=declared, extended_offsets=extended))
    except CorruptImageError:
        raise
    except (ValueError, EOFError, struct.error) as exc:
        raise CorruptImageError(
            f"The DICOM file's compressed image data is damaged and its frames cannot be located ({exc})."
        ) from exc
    if len(frames) != declared:
        raise _frame_count_mismatch(found=len(frames), declared=declared)
    if not all(frames):
        raise CorruptImageError("The DICOM file's compressed image data has an empty frame.")
    return frames


def _frames_without_offset_table(fragments: list[bytes], *, declared: int, rle: bool) -> int:
    """How many frames fragments hold when no offset table says so."""
    if rle or len(fragments) <= declared:
        # RLE puts each frame in exactly one fragment; with no more fragments than frames, each is one frame.
        return len(fragments)
    # A frame may span several fragments, but only a frame's first fragment starts with SOI (JPEG, JPEG-LS), SOC
    # (JPEG 2000 codestream) or the JP2 signature: entropy-coded data never holds FFD8 or FF4F.
    starts = sum(1 for fragment in fragments if fragment.startswith((b"\xff\xd8", b"\xff\x4f", _JP2_SIGNATURE)))
    return max(starts, 1)


def _frame_count_mismatch(*, found: int, declared: int) -> CorruptImageError:
    return CorruptImageError(
        f"The DICOM file is refused: its compressed image data holds {found} frame(s) but its header "
        f"(Number of Frames) says {declared}."
    )


def _frame_size(frame: bytes, transfer_syntax: str, *, number: int) -> FrameSize:
    try:
        if transfer_syntax in JPEG_2000_SYNTAXES:
            return _j2k_size(frame)
        markers = JPEG_LS_SOF_MARKERS if transfer_syntax in JPEG_LS_SYNTAXES else JPEG_SOF_MARKERS
        header = read_frame_header(frame, sof_markers=markers)
        return FrameSize(width=header.width, height=header.height, components=header.components)
    except CorruptImageError as exc:
        raise CorruptImageError(
            f"The DICOM file is refused: the header of its compressed frame {number} cannot be read ({exc})"
        ) from exc


def _j2k_size(frame: bytes) -> FrameSize:
    """Image size from the SIZ marker segment (ISO/IEC 15444-1 A.5.1), in a raw codestream or a JP2 file."""
    codestream = _jp2_codestream(frame) if frame.startswith(_JP2_SIGNATURE) else frame
    if not codestream.startswith(_J2K_SOC_SIZ) or len(codestream) < 42:
        raise CorruptImageError("no JPEG 2000 SIZ header at the start of the codestream")
    x_size, y_size, x_offset, y_offset = struct.unpack(">IIII", codestream[8:24])
    (components,) = struct.unpack(">H", codestream[40:42])
    if x_size <= x_offset or y_size <= y_offset:
        raise CorruptImageError("the JPEG 2000 SIZ header gives an empty image area")
    return FrameSize(width=x_size - x_offset, height=y_size - y_offset, components=components)


def _jp2_codestream(data: bytes) -> bytes:
    """The contents of the contiguous codestream box (``jp2c``) of a JP2 file (ISO/IEC 15444-1 I.4)."""
    pos = 0
    for _ in range(_MAX_JP2_BOXES):
        if pos + 8 > len(data):
            break
        length, box_type = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if length == 1:
            if pos + 16 > len(data):
                break
            (length,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif length == 0:
            length = len(data) - pos
        if length < header:
            raise CorruptImageError("a JP2 box has an invalid length")
        if box_type == b"jp2c":
            return data[pos + header : pos + length]
        pos += length
    raise CorruptImageError("the JP2 file has no codestream box")


def _check_rle(frame: bytes, *, number: int, samples: int, bits_allocated: int) -> None:
    """The RLE header (PS3.5 G.5): segment count and offsets; the decoded size comes from Rows/Columns."""
    expected = samples * math.ceil(bits_allocated / 8)
    if len(frame) < _RLE_HEADER_BYTES:
        raise CorruptImageError(f"The DICOM file is refused: its RLE frame {number} is shorter than its header.")
    count, *offsets = struct.unpack("<16I", frame[:_RLE_HEADER_BYTES])
    if count != expected:
        raise CorruptImageError(
            f"The DICOM file is refused: its RLE frame {number} has {count} segments but its header "
            f"(Samples per Pixel x Bits Allocated) needs {expected}."
        )
    used = offsets[:count]
    if (
        used[0] != _RLE_HEADER_BYTES
        or any(b <= a for a, b in zip(used, used[1:], strict=False))
        or used[-1] >= len(frame)
    ):
        raise CorruptImageError(
            f"The DICOM file is refused: the segment offsets of its RLE frame {number} are invalid."
        )
