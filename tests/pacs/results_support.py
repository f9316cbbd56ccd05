"""Synthetic source images and peer tools for the tests of the results sent back to the PACS (issue 9)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


def synthetic_dx(*, size: int = 64, patient_id: str = "PW-0001", study_uid: str | None = None) -> bytes:
    """A small, valid DX "for presentation" chest image (MONOCHROME2, 8 bit) as DICOM Part 10 bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = DX_FOR_PRESENTATION
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "20200101"
    ds.PatientSex = "F"
    ds.PatientAge = "004Y"
    ds.StudyDate = "20261130"
    ds.StudyTime = "101500"
    ds.ContentDate = "20261130"
    ds.ContentTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC-0001"
    ds.ReferringPhysicianName = ""
    ds.Modality = "DX"
    ds.Manufacturer = "Synthetic"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ["A", "R"]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition = "PA"
    ds.BodyPartExamined = "CHEST"
    ds.BurnedInAnnotation = "NO"
    ds.ImagerPixelSpacing = [0.5, 0.5]
    ds.DetectorType = "DIRECT"
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 128
    ds.WindowWidth = 256
    ds.LossyImageCompression = "00"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    gradient = np.tile(np.linspace(0, 255, size, dtype=np.uint8), (size, 1))
    ds.PixelData = gradient.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy reports for a file (warnings are left out)."""
    run = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def dsrdump(path: Path) -> str:
    run = subprocess.run(
        ["dsrdump", "+Pt", "+Pc", "+Pu", "+Pl", str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    return run.stdout


def peer_tools_available() -> bool:
    return all(shutil.which(tool) for tool in ("dciodvfy", "dsrdump"))
