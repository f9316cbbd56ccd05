"""Synthetic chest-X-ray-like DICOM files for the PACS tests, and the shared RSNA/SIIM files when available."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR = "1.2.840.10008.5.1.4.1.1.1"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"


def image_dataset(
    *,
    study_uid: str,
    sop_class: str = DX_PRESENTATION,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str = "PAT-1",
    accession: str = "ACC-1",
    size: int = 64,
    seed: int = 0,
) -> Dataset:
    """A small 16-bit MONOCHROME2 image dataset (uncompressed, Explicit VR Little Endian) with file meta."""
    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "TEST^PACS"
    ds.PatientSex = "F"
    ds.PatientAge = "042Y"
    ds.AccessionNumber = accession
    ds.StudyDate = "20261130"
    ds.StudyTime = "101500"
    ds.Modality = "CT" if sop_class == CT else ("CR" if sop_class == CR else "DX")
    ds.ViewPosition = "PA"
    ds.BodyPartExamined = "CHEST"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size)) * 4095).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def encode(ds: Dataset, *, meta_as_given: bool = False) -> bytes:
    """A Part 10 file. ``meta_as_given``: keep the file meta as set (pydicom otherwise rewrites it from the data)."""
    buffer = io.BytesIO()
    if meta_as_given:
        ds.preamble = b"\0" * 128
        ds.save_as(buffer, enforce_file_format=False)
    else:
        ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dataset_bytes(ds: Dataset) -> bytes:
    """The data set alone (Explicit VR Little Endian), as a C-STORE carries it: no preamble, no file meta."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def image_bytes(**kwargs: object) -> bytes:
    return encode(image_dataset(**kwargs))  # type: ignore[arg-type]


def compressed_bytes(transfer_syntax: str, **kwargs: object) -> bytes:
    """The same kind of image, compressed by pydicom's own encoders (JPEG 2000: openjpeg, JPEG-LS: pyjpegls)."""
    ds = image_dataset(**kwargs)  # type: ignore[arg-type]
    ds.compress(transfer_syntax, ds.pixel_array)
    return encode(ds)


def sample_dicom_files() -> list[Path]:
    """The shared RSNA/SIIM files (JPEG baseline, one study each), or [] when PNEUMO_SAMPLE_DATA is unset."""
    root = os.environ.get("PNEUMO_SAMPLE_DATA")
    if not root:
        return []
    return sorted((Path(root) / "dicom").rglob("*.dcm"))
