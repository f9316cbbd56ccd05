"""The DICOM Part 10 file meta of received bytes, read without touching the dataset (let alone its pixels)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

#: A DICOM UID (PS3.5 §9.1): digits in dot-separated components, at most 64 characters. Anything else (``../x``,
#: ``/tmp/x``, spaces, letters) is refused before any value reaches a file name, a query or a log line.
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
UID_MAX_LENGTH = 64
PREAMBLE_LENGTH = 128
MAGIC = b"DICM"


def is_valid_uid(value: str) -> bool:
    return len(value) <= UID_MAX_LENGTH and _UID.fullmatch(value) is not None


def is_part10(data: bytes) -> bool:
    """A Part 10 file: 128-byte preamble, then ``DICM``."""
    return data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] == MAGIC


@dataclass(frozen=True)
class FileMeta:
    media_storage_sop_class_uid: str
    media_storage_sop_instance_uid: str
    transfer_syntax_uid: str


def read_file_meta(data: bytes) -> FileMeta:
    """The file meta group (0002,xxxx) of a Part 10 file. Raises ``ValueError`` when it is missing or damaged."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    if not is_part10(data):
        raise ValueError("not a DICOM Part 10 file (no DICM prefix)")
    stream = io.BytesIO(data)
    try:
        read_preamble(stream, False)
        meta = _read_file_meta_info(stream)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged input; all mean "damaged"
        raise ValueError(f"damaged file meta ({type(exc).__name__})") from exc
    return FileMeta(
        media_storage_sop_class_uid=str(meta.get("MediaStorageSOPClassUID", "") or "").strip("\0 "),
        media_storage_sop_instance_uid=str(meta.get("MediaStorageSOPInstanceUID", "") or "").strip("\0 "),
        transfer_syntax_uid=str(meta.get("TransferSyntaxUID", "") or "").strip("\0 "),
    )
