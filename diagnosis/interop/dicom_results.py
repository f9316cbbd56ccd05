"""The DICOM objects PneumoWeb sends back to the PACS: AI SR (TID 1500), Grad-CAM Secondary Capture, verified SR.

Pure functions over plain frozen dataclasses and the source image's header (no Django): the caller reads the
header with :func:`read_source_header` (never the pixels) and stores the returned bytes.

Content (docs/DICOM_CONFORMANCE.md, "Objects sent back"):

- **AI SR**: a Comprehensive SR whose content is a TID 1500 Measurement Report ("Imaging Measurement Report") made
  by a device observer (PneumoWeb). One Measurement Group (TID 1501): finding type SNOMED CT 233604007
  "Pneumonia"; Algorithm Name "PneumoWeb" and Algorithm Version = the model version (TID 4019); the source image
  (SOP class + instance UID); NUM "Probability" (DCM 122157, unit UCUM ``{probability}``) and NUM "Decision
  threshold" (local code ``99PNEUMOWEB threshold``); a qualitative evaluation "Pneumonia" = SNOMED CT "Present"
  (52101004) or "Absent" (272519000), the coded negative. PRELIMINARY, UNVERIFIED, COMPLETE.
- **Overlay SC**: the Grad-CAM overlay as an RGB Secondary Capture in the source's study, a new series, with the
  caption burned in below the image (BurnedInAnnotation YES).
- **Verified SR**: the same template with a person observer (the radiologist), the radiologist's finding as the
  qualitative evaluation and no AI measurements; FINAL, VERIFIED (VerifyingObserverSequence), COMPLETE; its
  evidence lists the source image and the AI SR. Findings that make no pneumonia call are not coded as pneumonia
  present/absent: "Other abnormality" has the finding type SNOMED CT 263654008 "Abnormal", "Non-diagnostic image"
  DCM 111235 "Unusable - Quality renders image unusable" (CID 6044), each without a pneumonia evaluation and with
  the finding in words in the tracking identifier.

UIDs are derived from stable keys the caller gives (``uid_key``), so a task that runs twice builds the same
instances: a PACS that receives one again replaces it rather than holding two.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import CodedConcept
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from diagnosis.interop.findings import ReadingFinding

ALGORITHM_NAME = "PneumoWeb"
MANUFACTURER = "PneumoWeb"
NOT_VALIDATED_NOTE = "AI decision support — not validated"
AI_SR_SERIES_NUMBER = 9901
OVERLAY_SC_SERIES_NUMBER = 9902
VERIFIED_SR_SERIES_NUMBER = 9903
# Captions must stay legible in a PACS viewer: small overlays (a 224 px model input) are scaled up first.
MIN_SC_WIDTH = 512
CAPTION_FONT = "DejaVuSans.ttf"

PNEUMONIA = CodedConcept(value="233604007", scheme_designator="SCT", meaning="Pneumonia")
PRESENT = CodedConcept(value="52101004", scheme_designator="SCT", meaning="Present")
ABSENT = CodedConcept(value="272519000", scheme_designator="SCT", meaning="Absent")
CHEST_XRAY = CodedConcept(value="399208008", scheme_designator="SCT", meaning="Plain X-ray of chest")
PROBABILITY = CodedConcept(value="122157", scheme_designator="DCM", meaning="Probability")
THRESHOLD = CodedConcept(value="threshold", scheme_designator="99PNEUMOWEB", meaning="Decision threshold")
UNIT_PROBABILITY = CodedConcept(value="{probability}", scheme_designator="UCUM", meaning="probability")
LUNG = CodedConcept(value="39607008", scheme_designator="SCT", meaning="Lung")
ABNORMAL = CodedConcept(value="263654008", scheme_designator="SCT", meaning="Abnormal")
UNUSABLE_IMAGE = CodedConcept(
    value="111235", scheme_designator="DCM", meaning="Unusable - Quality renders image unusable"
)
SCREENING_TRACKING_TEXT = "Pneumonia screening"

# Type 2 attributes highdicom copies from the source by attribute access: a source without them gets them empty.
_TYPE2_FROM_SOURCE = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


class ResultBuildError(ValueError):
    """The source or the overlay cannot make a result object (not DICOM, no study UID, unreadable PNG...)."""


@dataclass(frozen=True)
class AiFinding:
    """The primary prediction of a study, as the SR and the caption show it. Probabilities are in [0, 1]."""

    probability: float
    threshold: float
    positive: bool
    model_version: str
    model_validated: bool


@dataclass(frozen=True)
class RadiologistFinding:
    """A radiologist's review: the finding, who verified it and for which organization."""

    finding: ReadingFinding
    observer_name: str  # DICOM person name, ``Family^Given`` (see :func:`person_name`)
    organization: str
    verified_at: datetime


@dataclass(frozen=True)
class BuiltObject:
    """A built DICOM object: its Part 10 bytes (Explicit VR Little Endian) and the UIDs the database records."""

    data: bytes
    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str


def read_source_header(source: bytes | BinaryIO) -> Dataset:
    """The source image's header (no pixel data), with empty Type 2 patient/study attributes where it has none.

    Raises:
        ResultBuildError: not a DICOM Part 10 file, or no Study/SOP Instance UID to attach results to.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        dataset = pydicom.dcmread(handle, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, EOFError, OSError, AttributeError) as exc:
        raise ResultBuildError(f"The source is not a readable DICOM file: {exc}") from exc
    for keyword in ("StudyInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not str(dataset.get(keyword, "")).strip():
            raise ResultBuildError(f"The source DICOM has no {keyword}; there is no study to attach results to.")
    for keyword in _TYPE2_FROM_SOURCE:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


def person_name(full_name: str) -> str:
    """``"Rita van Dijk"`` → ``"van Dijk^Rita"``: the DICOM PN form (family name first), best effort."""
    parts = full_name.replace("^", " ").split()
    if len(parts) < 2:
        return parts[0] if parts else "Unknown"
    return f"{' '.join(parts[1:])}^{parts[0]}"


def stable_uid(*keys: str) -> str:
    """A UID derived from ``keys`` (under pydicom's root): the same keys always give the same UID."""
    return str(generate_uid(entropy_srcs=["pneumoweb", *keys]))


def _device_context(model_version: str) -> hd.sr.ObserverContext:
    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=stable_uid("device", ALGORITHM_NAME),
            name=ALGORITHM_NAME,
            manufacturer_name=MANUFACTURER,
            model_name=model_version[:64],
        ),
    )


def _coded_finding(finding: ReadingFinding) -> tuple[CodedConcept, list[hd.sr.QualitativeEvaluation], str]:
    """Finding type, qualitative evaluations and tracking text of a finding (module docstring, "Verified SR")."""
    if finding == ReadingFinding.OTHER_ABNORMALITY:
        return ABNORMAL, [], f"{SCREENING_TRACKING_TEXT}: other abnormality (not pneumonia)"
    if finding == ReadingFinding.NON_DIAGNOSTIC:
        return UNUSABLE_IMAGE, [], f"{SCREENING_TRACKING_TEXT}: non-diagnostic image"
    value = PRESENT if finding == ReadingFinding.PNEUMONIA else ABSENT
    return PNEUMONIA, [hd.sr.QualitativeEvaluation(name=PNEUMONIA, value=value)], SCREENING_TRACKING_TEXT


def _measurement_report(
    *,
    source: Dataset,
    uid_key: str,
    observer: hd.sr.ObserverContext,
    finding: ReadingFinding,
    algorithm: hd.sr.AlgorithmIdentification | None,
    measurements: Sequence[hd.sr.Measurement],
) -> hd.sr.MeasurementReport:
    finding_type, evaluations, tracking_text = _coded_finding(finding)
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=stable_uid(uid_key, "tracking"), identifier=tracking_text),
        finding_type=finding_type,
        algorithm_id=algorithm,
        finding_sites=[hd.sr.FindingSite(anatomic_location=LUNG)],
        measurements=list(measurements) or None,
        qualitative_evaluations=evaluations or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    is_person = observer[0].ConceptCodeSequence[0].CodeValue == codes.DCM.Person.value
    return hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=observer if is_person else None,
            observer_device_context=None if is_person else observer,
        ),
        procedure_reported=CHEST_XRAY,
        imaging_measurements=[group],
        title=codes.cid7021.ImagingMeasurementReport,
    )


def _to_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@contextmanager
def _patient_name_as_given() -> Iterator[None]:
    """Copy the source's patient name as it is: highdicom doubts one-part names (the RSNA files carry a UUID there),
    which is not ours to correct and would repeat in the worker's log for every study."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The string .* is unlikely to represent the intended person name")
        yield


def build_ai_sr(*, source: Dataset, finding: AiFinding, uid_key: str) -> BuiltObject:
    """The AI's preliminary, unverified Comprehensive SR (TID 1500) for ``source``'s study."""
    algorithm = hd.sr.AlgorithmIdentification(
        name=ALGORITHM_NAME,
        version=finding.model_version[:64],
        parameters=[f"validated: {'yes' if finding.model_validated else 'no'}"],
        manufacturer=MANUFACTURER,
    )
    measurements = [
        hd.sr.Measurement(name=PROBABILITY, value=round(finding.probability, 6), unit=UNIT_PROBABILITY),
        hd.sr.Measurement(name=THRESHOLD, value=round(finding.threshold, 6), unit=UNIT_PROBABILITY),
    ]
    content = _measurement_report(
        source=source,
        uid_key=uid_key,
        observer=_device_context(finding.model_version),
        finding=ReadingFinding.PNEUMONIA if finding.positive else ReadingFinding.NORMAL,
        algorithm=algorithm,
        measurements=measurements,
    )
    series_uid = stable_uid(uid_key, "ai-sr-series")
    with _patient_name_as_given():
        sr = hd.sr.ComprehensiveSR(
            evidence=[source],
            content=content,
            series_instance_uid=series_uid,
            series_number=AI_SR_SERIES_NUMBER,
            sop_instance_uid=stable_uid(uid_key, "ai-sr"),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            is_final=False,
            is_verified=False,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
    sr.SeriesDescription = "PneumoWeb AI result (preliminary)"
    return BuiltObject(_to_bytes(sr), str(sr.SOPClassUID), str(sr.SOPInstanceUID), series_uid)


def build_verified_sr(
    *,
    source: Dataset,
    finding: RadiologistFinding,
    uid_key: str,
    instance_number: int = 1,
    ai_sr: Dataset | None = None,
) -> BuiltObject:
    """The radiologist's verified, final SR. Its evidence lists the source image and, when given, the AI SR."""
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=finding.observer_name, login_name=None, organization_name=finding.organization
        ),
    )
    content = _measurement_report(
        source=source, uid_key=uid_key, observer=observer, finding=finding.finding, algorithm=None, measurements=()
    )
    series_uid = stable_uid(uid_key, "verified-sr-series")
    with _patient_name_as_given():
        sr = hd.sr.ComprehensiveSR(
            evidence=[source] if ai_sr is None else [source, ai_sr],
            content=content,
            series_instance_uid=series_uid,
            series_number=VERIFIED_SR_SERIES_NUMBER,
            sop_instance_uid=stable_uid(uid_key, "verified-sr"),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            is_complete=True,
            is_final=True,
            is_verified=True,
            verifying_observer_name=finding.observer_name,
            verifying_organization=finding.organization,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
    # highdicom stamps the verification with "now"; the review's own time is the one that counts.
    sr.VerifyingObserverSequence[0].VerificationDateTime = finding.verified_at.strftime("%Y%m%d%H%M%S")
    sr.SeriesDescription = "Radiologist's finding (verified)"
    return BuiltObject(_to_bytes(sr), str(sr.SOPClassUID), str(sr.SOPInstanceUID), series_uid)


def caption_lines(finding: AiFinding) -> list[str]:
    """The text burned into the overlay image."""
    verdict = "above threshold: pneumonia suspected" if finding.positive else "below threshold"
    lines = [
        f"Pneumonia probability {finding.probability:.1%} (threshold {finding.threshold:.1%}), {verdict}",
        f"{ALGORITHM_NAME} model version {finding.model_version}",
    ]
    if not finding.model_validated:
        lines.append(NOT_VALIDATED_NOTE)
    lines.append("Grad-CAM: regions that most influenced the model, not a delineation of disease")
    return lines


def _font(size: int) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, bool]:
    """DejaVu Sans where the system has it (it has the em dash), else Pillow's own font (which lacks it)."""
    try:
        return ImageFont.truetype(CAPTION_FONT, size), True
    except OSError:
        return ImageFont.load_default(size=size), False


def _captioned(overlay_png: bytes, lines: Sequence[str]) -> np.ndarray:
    """``(H + band, W, 3) uint8``: the overlay (scaled up to ``MIN_SC_WIDTH``) over a black caption band."""
    try:
        with Image.open(io.BytesIO(overlay_png)) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ResultBuildError(f"The Grad-CAM overlay is not a readable image: {exc}") from exc
    if image.width < MIN_SC_WIDTH:
        scale = MIN_SC_WIDTH / image.width
        image = image.resize((MIN_SC_WIDTH, max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    font_size = max(10, image.width // 40)
    font, has_dash = _font(font_size)
    texts = [line if has_dash else line.replace("\u2014", "-") for line in lines]
    margin = max(4, font_size // 2)
    # Shrink until the longest line fits the width (a long version name must not be cut off).
    while font_size > 10 and max(font.getlength(text) for text in texts) > image.width - 2 * margin:
        font_size -= 1
        font, _ = _font(font_size)
    line_height = round(font_size * 1.35)
    band = line_height * len(texts) + 2 * margin
    canvas = Image.new("RGB", (image.width, image.height + band), (0, 0, 0))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, (line, text) in enumerate(zip(lines, texts, strict=True)):
        colour = (255, 96, 96) if line == NOT_VALIDATED_NOTE else (255, 255, 255)
        draw.text((margin, image.height + margin + index * line_height), text, fill=colour, font=font)
    return np.asarray(canvas, dtype=np.uint8)


def build_overlay_sc(*, source: Dataset, finding: AiFinding, overlay_png: bytes, uid_key: str) -> BuiltObject:
    """The Grad-CAM overlay with its caption as an RGB Secondary Capture in the source's study, a new series."""
    pixels = _captioned(overlay_png, caption_lines(finding))
    series_uid = stable_uid(uid_key, "overlay-sc-series")
    with _patient_name_as_given():
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source,
            pixel_array=pixels,
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            # highdicom wants one, validated against single-letter codes; the source's own value (or an empty Type 2
            # value when it has none) replaces it below: an orientation is never invented.
            patient_orientation=("A", "R"),
            series_instance_uid=series_uid,
            series_number=OVERLAY_SC_SERIES_NUMBER,
            sop_instance_uid=stable_uid(uid_key, "overlay-sc"),
            instance_number=1,
            manufacturer=MANUFACTURER,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
    sc.PatientOrientation = source.get("PatientOrientation", "")
    sc.BurnedInAnnotation = "YES"
    sc.SeriesDescription = "PneumoWeb Grad-CAM overlay"
    # The source's character set (often Latin-1) has no em dash: the text attribute gets a plain hyphen.
    sc.ImageComments = " / ".join(caption_lines(finding)).replace("—", "-")[:10240]
    # highdicom sets no body part; without one dciodvfy cannot tell the image is not of a paired organ and asks
    # for Laterality. A chest X-ray screening result is of the chest, whatever the source forgot to say.
    sc.BodyPartExamined = str(source.get("BodyPartExamined", "")).strip() or "CHEST"
    if "Laterality" in source:
        sc.Laterality = source.Laterality
    sc.DerivationDescription = "Grad-CAM heatmap of the PneumoWeb model blended over the source image"
    sc.SourceImageSequence = [_image_reference(source)]
    return BuiltObject(_to_bytes(sc), str(sc.SOPClassUID), str(sc.SOPInstanceUID), series_uid)


def _image_reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def read_dataset(data: bytes) -> Dataset:
    """A stored result object (or the AI SR a verified SR refers to), header only."""
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
