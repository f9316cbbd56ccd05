"""Read a single-frame DICOM radiograph into an 8-bit grayscale array.

The contract follows torchxrayvision's ``read_xray_dcm``, written anew:

1. The bytes must carry ``DICM`` at offset 128. ``force=True`` is never used:
   with it pydicom parses any bytes (PNG, HTML, ZIP) as a dataset.
2. Header checks come before any pixel decoding: an image module must be
   present, one frame only, a supported photometric interpretation, a decoder
   plugin for the transfer syntax, and a pixel count under the limit.
3. Pixels are decoded through :mod:`pydicom.pixels` (pydicom >= 3), which masks
   the bits above *BitsStored* and sign-extends signed data. Then:

   * MONOCHROME1/2: Modality LUT or Rescale Slope/Intercept; then the first VOI
     LUT if the file has a *VOI LUT Sequence*, else the first *Window
     Center/Width* (PS3.3 C.11.2.1.2, LINEAR / LINEAR_EXACT / SIGMOID), else a
     min-max stretch over the values actually present (what viewers show by
     default when no window is stored; the nominal *BitsStored* range would
     leave a 12-bit detector that only uses part of its range dark and flat).
     MONOCHROME1 is inverted *after* windowing so that bone is bright.
   * RGB and YBR secondary captures: YBR converted to RGB, then ITU-R BT.601
     luma, scaled from the *BitsStored* range (colour values are already
     display values, so no stretch).
   * Anything else (PALETTE COLOR, ...) raises :class:`UnsupportedDicomError`.

Every malformed-file exception pydicom can raise becomes a
:class:`CorruptImageError` or :class:`UnsupportedDicomError` whose message can
be shown to the uploader.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import struct
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut, apply_voi, convert_color_space
from pydicom.uid import UID

from mlcore.dicom_frames import check_encapsulated_frames
from mlcore.errors import CorruptImageError, ImageError, UnsupportedDicomError, UnsupportedFormatError
from mlcore.image_header import ImageHeader, check_dimensions

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.pixels.decoders.base import Decoder

logger = logging.getLogger(__name__)

DICOM_MAGIC = b"DICM"
DICOM_MAGIC_OFFSET = 128

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")
_WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

# What pydicom and its decoder plugins raise on malformed input. Our own
# ImageError subclasses ValueError, so every handler re-raises it first.
# The list grew from fuzzing (tests/mlcore/test_dicom.py): BytesLengthException
# comes from a damaged (0002,0000) group length, for example.
_DICOM_ERRORS: tuple[type[BaseException], ...] = (
    InvalidDicomError,
    BytesLengthException,
    ValueError,
    AttributeError,
    EOFError,
    OSError,
    RecursionError,
    LookupError,
    TypeError,
    RuntimeError,
    ArithmeticError,
    struct.error,
)


@dataclass(frozen=True)
class DicomMetadata:
    """Identifying and acquisition tags of a DICOM file, as plain strings (missing tags are ``""``)."""

    patient_id: str
    patient_name: str
    patient_age: str
    patient_sex: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    accession_number: str
    study_date: str
    study_time: str
    study_description: str
    modality: str
    view_position: str
    body_part_examined: str
    photometric_interpretation: str
    transfer_syntax_uid: str
    rows: int
    columns: int

    def to_dict(self) -> dict[str, str | int]:
        """Return the fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


def is_dicom(data: bytes) -> bool:
    """Return whether ``data`` has the DICOM Part 10 magic ``DICM`` at offset 128."""
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def read_dicom_header(data: bytes) -> tuple[ImageHeader, DicomMetadata]:
    """Parse the header of a DICOM file without reading or decoding its pixels.

    Args:
        data: The whole file.

    Returns:
        ``(header, metadata)``; ``header.bit_depth`` is *BitsStored*.

    Raises:
        UnsupportedFormatError: No ``DICM`` magic at offset 128.
        UnsupportedDicomError: No image module, several frames, unsupported
            photometric interpretation or transfer syntax.
        CorruptImageError: The header cannot be parsed.
    """
    ds = _parse(data, stop_before_pixels=True)
    header, metadata, _ = _describe(ds)
    return header, metadata


def read_dicom(data: bytes, *, max_pixels: int) -> tuple[np.ndarray, DicomMetadata]:
    """Decode a single-frame DICOM radiograph to display-ready 8-bit grayscale.

    Only the pixel-count limit is enforced here; the minimum side length is
    the caller's policy (:func:`mlcore.imaging.load_image` applies it).

    Args:
        data: The whole file.
        max_pixels: Refuse images with ``Rows * Columns`` above this, before decoding.

    Returns:
        ``(pixels, metadata)``: pixels is ``(Rows, Columns)`` ``uint8``, C-contiguous,
        bright = dense (bone), whatever the photometric interpretation.

    Raises:
        UnsupportedFormatError, UnsupportedDicomError, CorruptImageError,
        ImageTooLargeError: See :func:`read_dicom_header`; Corrupt also for
            truncated or undecodable pixel data.
    """
    ds = _parse(data, stop_before_pixels=False)
    header, metadata, decoder = _describe(ds)
    check_dimensions(header, max_pixels=max_pixels, min_side=1)
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise UnsupportedDicomError("The DICOM file stores floating-point pixels, which are not supported.")
        # Rows/Columns were present (checked in _describe), so the pixels were
        # expected: the usual cause is a file cut short during transfer.
        raise CorruptImageError("The DICOM file has no pixel data after its header; it is probably truncated.")
    # The upload check ran this too; a file that reached storage another way must not reach a decoder unchecked.
    check_encapsulated_frames(ds, max_pixels=max_pixels)
    try:
        array, info = decoder.as_array(ds, index=0)
        pixels = _to_uint8(array, ds, str(info["photometric_interpretation"]))
    except ImageError:
        raise
    except _DICOM_ERRORS as exc:
        logger.info("DICOM pixel decoding failed: %r", exc)
        raise CorruptImageError(
            f"The DICOM image ({_syntax_name(metadata.transfer_syntax_uid)}) "
            "could not be decoded; the file may be damaged or truncated."
        ) from exc
    if pixels.shape != (header.height, header.width):
        raise CorruptImageError(
            f"The decoded DICOM image is {pixels.shape[1]} x {pixels.shape[0]} pixels but its header "
            f"says {header.width} x {header.height}."
        )
    return np.ascontiguousarray(pixels), metadata


def apply_window(values: np.ndarray, *, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply a DICOM VOI window (PS3.3 C.11.2.1.2 and C.11.2.1.3), mapping to [0, 1].

    Args:
        values: Modality values (e.g. Hounsfield units), any shape, any real dtype.
        center: *Window Center*.
        width: *Window Width* (>= 1 for LINEAR, > 0 otherwise).
        function: *VOI LUT Function*: ``"LINEAR"``, ``"LINEAR_EXACT"`` or ``"SIGMOID"``.

    Returns:
        float64 array of the same shape, in [0, 1].

    Raises:
        UnsupportedDicomError: Unknown function or invalid width.
    """
    x = np.asarray(values, dtype=np.float64)
    function = function.upper()
    if function not in _WINDOW_FUNCTIONS:
        raise UnsupportedDicomError(f"The DICOM VOI LUT function is not supported. Received: {function!r}")
    if (function == "LINEAR" and width < 1) or width <= 0:
        raise UnsupportedDicomError(f"The DICOM window width is invalid for {function}. Received: {width!r}")
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR":
        # LINEAR works on (center - 0.5, width - 1); width 1 is a hard threshold.
        center, width = center - 0.5, width - 1.0
        if width == 0:
            return (x > center).astype(np.float64)
    # The standard's three cases (below, inside, above the window) are exactly
    # the clipped straight line.
    return np.clip((x - center) / width + 0.5, 0.0, 1.0)


def _parse(data: bytes, *, stop_before_pixels: bool) -> Dataset:
    if not is_dicom(data):
        raise UnsupportedFormatError("The file is not a DICOM file (no 'DICM' marker at byte 128).", "not DICOM")
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except _DICOM_ERRORS as exc:
        logger.info("DICOM parsing failed: %r", exc)
        raise CorruptImageError("The DICOM file is damaged and its header could not be read.") from exc


def _describe(ds: Dataset) -> tuple[ImageHeader, DicomMetadata, Decoder]:
    """Validate the image-level header and return header, metadata and the pixel decoder."""
    try:
        return _describe_unchecked(ds)
    except ImageError:
        raise
    except _DICOM_ERRORS as exc:
        logger.info("DICOM header validation failed: %r", exc)
        raise CorruptImageError("The DICOM file has invalid image header values.") from exc


def _describe_unchecked(ds: Dataset) -> tuple[ImageHeader, DicomMetadata, Decoder]:
    if ds.get("Rows") is None or ds.get("Columns") is None:
        raise UnsupportedDicomError("The DICOM file contains no image.")
    frames_value = ds.get("NumberOfFrames")
    frames = 1 if frames_value in (None, "") else int(frames_value)
    if frames > 1:
        raise UnsupportedDicomError(
            f"The DICOM file contains {frames} frames; only single-frame radiographs are supported."
        )
    if frames < 1:
        raise CorruptImageError(f"The DICOM file declares an invalid number of frames. Received: {frames}")
    photometric = _text(ds, "PhotometricInterpretation").upper()
    if photometric not in _MONOCHROME + _COLOUR:
        raise UnsupportedDicomError(
            f"DICOM images with photometric interpretation {photometric or '(missing)'} are not supported; "
            "a grayscale radiograph is needed."
        )
    samples = int(ds.get("SamplesPerPixel") or 1)
    if samples != (1 if photometric in _MONOCHROME else 3):
        raise UnsupportedDicomError(f"The DICOM file is inconsistent: {photometric} with {samples} samples per pixel.")
    transfer_syntax = str(ds.file_meta.get("TransferSyntaxUID") or "")
    decoder = _decoder_for(transfer_syntax)
    metadata = DicomMetadata(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_age=_text(ds, "PatientAge"),
        patient_sex=_text(ds, "PatientSex"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        study_description=_text(ds, "StudyDescription"),
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        body_part_examined=_text(ds, "BodyPartExamined"),
        photometric_interpretation=photometric,
        transfer_syntax_uid=transfer_syntax,
        rows=int(ds.Rows),
        columns=int(ds.Columns),
    )
    bit_depth = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0)
    header = ImageHeader(
        format="dicom", width=metadata.columns, height=metadata.rows, frames=frames, bit_depth=bit_depth
    )
    return header, metadata, decoder


def _decoder_for(transfer_syntax: str) -> Decoder:
    if not transfer_syntax:
        raise UnsupportedDicomError("The DICOM file does not state its transfer syntax, so it cannot be decoded.")
    name = _syntax_name(transfer_syntax)
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        raise UnsupportedDicomError(f"DICOM images encoded as {name} are not supported.") from None
    if not decoder.is_available:
        # The message is for the uploader; the missing plugins are for the operator.
        logger.warning("No decoder plugin for %s; missing: %s", name, decoder.missing_dependencies)
        raise UnsupportedDicomError(f"This server has no decoder installed for DICOM images encoded as {name}.")
    return decoder


def _syntax_name(uid: str) -> str:
    name = UID(uid).name
    return name if name == uid else f"{name} ({uid})"


def _text(ds: Dataset, keyword: str) -> str:
    """Return a tag as a plain string: multi-values joined with backslash, missing or unreadable as ``""``.

    Control characters are removed (the text ends up in logs, CSV exports and HTML): DICOM's text VRs forbid them
    except ESC, which pydicom has already used to switch character sets.
    """
    try:
        value: Any = ds.get(keyword)
    except _DICOM_ERRORS:
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = "\\".join(str(item) for item in value)
    return "".join(ch for ch in str(value) if unicodedata.category(ch) != "Cc").strip()


def _to_uint8(array: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Turn one decoded frame into bright-is-dense ``(H, W) uint8``."""
    if photometric in _MONOCHROME:
        if array.ndim != 2:
            raise CorruptImageError("The DICOM grayscale image does not decode to a 2-D array.")
        unit = _voi_to_unit(apply_modality_lut(array, ds), ds)
        pixels = _unit_to_uint8(unit)
        # MONOCHROME1 stores bone dark; invert after the window, as a display does.
        return 255 - pixels if photometric == "MONOCHROME1" else pixels
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        array = convert_color_space(array, photometric, "RGB")
    elif photometric != "RGB":
        raise UnsupportedDicomError(f"DICOM colour images in {photometric} could not be converted to RGB.")
    if array.ndim != 3 or array.shape[2] != 3:
        raise CorruptImageError("The DICOM colour image does not decode to three channels.")
    bits = int(ds.get("BitsStored") or array.dtype.itemsize * 8)
    rgb = array.astype(np.float64) / float(2**bits - 1)
    # ITU-R BT.601 luma, the weights cv2.COLOR_RGB2GRAY and Pillow's "L" use.
    return _unit_to_uint8(rgb @ np.array([0.299, 0.587, 0.114]))


def _voi_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """Map modality values to [0, 1] with the file's first VOI LUT, first window, or min-max."""
    sequence = ds.get("VOILUTSequence")
    if sequence:
        return _voi_lut_to_unit(values, ds)
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers not in (None, "") and widths not in (None, ""):
        center = float(centers[0] if isinstance(centers, pydicom.multival.MultiValue) else centers)
        width = float(widths[0] if isinstance(widths, pydicom.multival.MultiValue) else widths)
        function = _text(ds, "VOILUTFunction") or "LINEAR"
        return apply_window(values, center=center, width=width, function=function)
    return _min_max_to_unit(values)


def _voi_lut_to_unit(values: np.ndarray, ds: Dataset) -> np.ndarray:
    item = ds.VOILUTSequence[0]
    entries, first_mapped = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
    # A LUT is indexed by integers; rescaled modality values are float64.
    mapped = apply_voi(np.rint(values).astype(np.int64), ds, 0).astype(np.float64)
    # Normalise by the range the table really spans: many files declare 16 bits
    # per entry and use 12, which the nominal range would render nearly black.
    table = apply_voi(np.arange(first_mapped, first_mapped + entries, dtype=np.int64), ds, 0)
    low, high = float(table.min()), float(table.max())
    if high == low:
        return np.zeros(mapped.shape, dtype=np.float64)
    return (mapped - low) / (high - low)


def _min_max_to_unit(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    low, high = float(x.min()), float(x.max())
    if high == low:
        # A constant image has no contrast to stretch: render it black rather
        # than dividing by zero.
        return np.zeros(x.shape, dtype=np.float64)
    return (x - low) / (high - low)


def _unit_to_uint8(unit: np.ndarray) -> np.ndarray:
    # Round half up (np.rint would round 0.5 to even).
    pixels: np.ndarray = np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return pixels
