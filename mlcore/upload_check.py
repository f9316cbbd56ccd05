"""Check an upload completely WITHOUT decoding its pixels, so the web process can refuse bad input with a clear
message and store nothing, while the C decoders only ever run in a worker (see PITFALLS: decoders are C code).

What is checked: the format from magic bytes, the dimensions from the header (decompression bombs), that PNG
chunks are intact up to IEND, that a JPEG is complete and has one frame header, and that a DICOM has one frame of
pixel data of the expected length or, compressed, frames whose own headers match its Rows/Columns
(:mod:`mlcore.dicom_frames`), in a transfer syntax we can decode.

The work is bounded whatever the bytes: PNG chunks and JPEG segments are counted and a file with more than any real
image has is refused (a 48 MB PNG of 4 million empty chunks used to cost 20-30 s of web CPU).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from mlcore.dicom import DicomMetadata, read_dicom_header
from mlcore.dicom_frames import check_encapsulated_frames
from mlcore.errors import CorruptImageError, EmptyImageError, ImageError, UnsupportedDicomError
from mlcore.image_header import DEFAULT_MAX_PIXELS, ImageHeader, check_dimensions
from mlcore.imaging import detect_format, read_header
from mlcore.jpeg_markers import check_jpeg_file

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: libpng writes 8 KB IDAT chunks, so a 50 MB PNG has about 6,400; a file with more is not an ordinary image.
PNG_MAX_CHUNKS = 16_384


@dataclass(frozen=True)
class UploadInfo:
    header: ImageHeader
    dicom: DicomMetadata | None


def inspect_upload(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> UploadInfo:
    """Validate an uploaded file's structure.

    Args:
        data: the uploaded bytes.
        max_pixels: refuse images whose header declares more pixels than this.

    Returns:
        The header (format, width, height) and, for DICOM, its metadata.

    Raises:
        ImageError subclasses with a message for the user (see ``mlcore.errors``).
    """
    if not data:
        raise EmptyImageError("The file is empty.")
    image_format = detect_format(data)
    if image_format == "dicom":
        _refuse_deflated_dicom(data)
        header, metadata = read_dicom_header(data)
        check_dimensions(header, max_pixels=max_pixels)
        _check_dicom_pixel_data(data, max_pixels=max_pixels)
        return UploadInfo(header=header, dicom=metadata)
    header = read_header(data)
    check_dimensions(header, max_pixels=max_pixels)
    if image_format == "png":
        _check_png_chunks(data)
    else:
        check_jpeg_file(data)
    return UploadInfo(header=header, dicom=None)


_DEFLATED_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"}


def _refuse_deflated_dicom(data: bytes) -> None:
    """pydicom inflates a deflated dataset whole, with no size limit: a deflate bomb. Refuse it from the meta."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    try:
        stream = io.BytesIO(data)
        read_preamble(stream, False)  # positions the stream after "DICM" (already checked by detect_format)
        meta = _read_file_meta_info(stream)
    except Exception as exc:  # any failure to read the meta is a damaged file
        raise CorruptImageError(f"The DICOM file's header is damaged ({type(exc).__name__}).") from exc
    transfer_syntax = str(meta.get("TransferSyntaxUID", ""))
    if transfer_syntax in _DEFLATED_TRANSFER_SYNTAXES:
        raise UnsupportedDicomError(
            f"Deflate-compressed DICOM ({transfer_syntax}) is not accepted; please send it uncompressed or "
            "JPEG/JPEG 2000/RLE compressed."
        )


def _check_png_chunks(data: bytes) -> None:
    position = len(_PNG_SIGNATURE)
    for _ in range(PNG_MAX_CHUNKS):
        if position + 8 > len(data):
            break
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunk_type = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[position + 4 : end - 4]) & 0xFFFFFFFF != crc:
            name = chunk_type.decode("latin-1")
            raise CorruptImageError(f"The PNG file is damaged (bad checksum in its {name} chunk).")
        if chunk_type == b"IEND":
            return
        position = end
    else:
        raise CorruptImageError(
            f"The PNG file has more than {PNG_MAX_CHUNKS:,} chunks, far more than any real image; it was refused "
            "without decoding."
        )
    raise CorruptImageError("The PNG file is truncated (it ends before its last chunk).")


def _check_dicom_pixel_data(data: bytes, *, max_pixels: int) -> None:
    import pydicom
    from pydicom.pixels.decoders.base import get_decoder

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))  # never force=True on uploads
        transfer_syntax = dataset.file_meta.TransferSyntaxUID
        if "PixelData" not in dataset or dataset.PixelData is None:
            raise UnsupportedDicomError("The DICOM file contains no image (no pixel data).")
        value = bytes(dataset.PixelData)
        if transfer_syntax.is_compressed:
            decoder = get_decoder(transfer_syntax)
            if not decoder.is_available:
                raise UnsupportedDicomError(
                    f"The DICOM image is compressed as {transfer_syntax.name} ({transfer_syntax}), which this "
                    "installation cannot decode."
                )
            check_encapsulated_frames(dataset, max_pixels=max_pixels)
        else:
            expected = _expected_native_length(dataset)
            if len(value) < expected:
                raise CorruptImageError(
                    f"The DICOM file is truncated: its image needs {expected} bytes but holds {len(value)}."
                )
    except ImageError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        EOFError,
        OSError,
        RecursionError,
        struct.error,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise CorruptImageError(f"The DICOM file is damaged and cannot be read ({type(exc).__name__}).") from exc


def _expected_native_length(dataset: object) -> int:
    rows = int(getattr(dataset, "Rows", 0))
    columns = int(getattr(dataset, "Columns", 0))
    samples = int(getattr(dataset, "SamplesPerPixel", 1) or 1)
    bits_allocated = int(getattr(dataset, "BitsAllocated", 8) or 8)
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    pixels = rows * columns * samples * frames
    if bits_allocated == 1:
        return (pixels + 7) // 8
    return pixels * ((bits_allocated + 7) // 8)
