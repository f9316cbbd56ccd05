"""The result objects sent back to the PACS: AI SR (TID 1500), Grad-CAM Secondary Capture, verified SR.

Read back with pydicom; the ``pacs``-marked tests also run dciodvfy and dsrdump (dicom3tools, dcmtk) on them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from diagnosis.interop import dicom_results as results
from diagnosis.interop.findings import ReadingFinding
from tests.pacs.results_support import dciodvfy_errors, dsrdump, peer_tools_available, synthetic_dx

AI = results.AiFinding(
    probability=0.8123, threshold=0.42, positive=True, model_version="v20261130-x", model_validated=False
)
VALIDATED_NEGATIVE = results.AiFinding(
    probability=0.1, threshold=0.42, positive=False, model_version="v20261130-x", model_validated=True
)


def overlay_png(width: int = 64, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (180, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def items(dataset: Dataset) -> Iterator[Dataset]:
    """Every content item of an SR, depth first."""
    for item in dataset.get("ContentSequence", []):
        yield item
        yield from items(item)


def concept(item: Dataset) -> str:
    return str(item.ConceptNameCodeSequence[0].CodeValue) if "ConceptNameCodeSequence" in item else ""


@pytest.fixture
def source_bytes() -> bytes:
    return synthetic_dx(patient_id="PW-42")


@pytest.fixture
def source(source_bytes: bytes) -> Dataset:
    return results.read_source_header(source_bytes)


def test_ai_sr_holds_the_finding_probability_threshold_and_algorithm(source: Dataset) -> None:
    built = results.build_ai_sr(source=source, finding=AI, uid_key="study-1")
    sr = pydicom.dcmread(io.BytesIO(built.data))

    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    assert sr.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert (sr.PreliminaryFlag, sr.VerificationFlag, sr.CompletionFlag) == ("PRELIMINARY", "UNVERIFIED", "COMPLETE")
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert (
        sr.SeriesInstanceUID not in (source.SeriesInstanceUID, "") and sr.SeriesInstanceUID == built.series_instance_uid
    )
    assert (sr.PatientID, str(sr.PatientName), sr.PatientSex, sr.AccessionNumber) == (
        "PW-42",
        "Doe^Jane",
        "F",
        "ACC-0001",
    )
    content = list(items(sr))
    texts = {concept(item): item.TextValue for item in content if item.ValueType == "TEXT"}
    assert texts["111001"] == "PneumoWeb" and texts["111003"] == "v20261130-x"  # Algorithm Name / Version
    numbers = {concept(item): item.MeasuredValueSequence[0] for item in content if item.ValueType == "NUM"}
    assert float(numbers["122157"].NumericValue) == pytest.approx(0.8123)
    assert numbers["122157"].MeasurementUnitsCodeSequence[0].CodeValue == "{probability}"
    assert float(numbers["threshold"].NumericValue) == pytest.approx(0.42)
    codes = {(concept(item), item.ConceptCodeSequence[0].CodeValue) for item in content if item.ValueType == "CODE"}
    assert ("121071", "233604007") in codes  # Finding: Pneumonia
    assert ("233604007", "52101004") in codes  # Pneumonia: Present
    images = [item.ReferencedSOPSequence[0] for item in content if item.ValueType == "IMAGE"]
    assert [(ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) for ref in images] == [
        (source.SOPClassUID, source.SOPInstanceUID)
    ]


def test_a_negative_ai_finding_is_coded_absent(source: Dataset) -> None:
    sr = pydicom.dcmread(io.BytesIO(results.build_ai_sr(source=source, finding=VALIDATED_NEGATIVE, uid_key="s").data))

    evaluations = {
        concept(item): item.ConceptCodeSequence[0].CodeValue for item in items(sr) if item.ValueType == "CODE"
    }
    assert evaluations["233604007"] == "272519000"  # Pneumonia: Absent


def test_the_same_key_builds_the_same_instance_and_another_key_another(source: Dataset) -> None:
    first = results.build_ai_sr(source=source, finding=AI, uid_key="study-1")
    again = results.build_ai_sr(source=source, finding=AI, uid_key="study-1")
    other = results.build_ai_sr(source=source, finding=AI, uid_key="study-2")

    assert first.sop_instance_uid == again.sop_instance_uid
    assert other.sop_instance_uid != first.sop_instance_uid


def test_overlay_sc_is_an_rgb_image_in_a_new_series_of_the_same_study(source: Dataset) -> None:
    del source.BodyPartExamined
    built = results.build_overlay_sc(source=source, finding=AI, overlay_png=overlay_png(), uid_key="study-1")
    sc = pydicom.dcmread(io.BytesIO(built.data))

    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.SeriesInstanceUID == built.series_instance_uid != source.SeriesInstanceUID
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel, sc.BitsAllocated) == ("RGB", 3, 8)
    assert sc.BurnedInAnnotation == "YES"
    assert sc.BodyPartExamined == "CHEST"
    assert sc.PatientID == "PW-42"
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    pixels = sc.pixel_array
    assert pixels.shape[1] == results.MIN_SC_WIDTH and pixels.shape[0] > results.MIN_SC_WIDTH  # image + caption
    band = pixels[results.MIN_SC_WIDTH :]
    assert band.max() == 255 and np.count_nonzero(band) > 500  # white caption text on black


def test_the_caption_warns_only_when_the_version_is_not_validated(source: Dataset) -> None:
    unvalidated = results.caption_lines(AI)
    validated = results.caption_lines(VALIDATED_NEGATIVE)

    assert "AI decision support — not validated" in unvalidated
    assert "AI decision support — not validated" not in validated
    assert "Pneumonia probability 81.2% (threshold 42.0%), above threshold: pneumonia suspected" in unvalidated
    assert "PneumoWeb model version v20261130-x" in unvalidated
    # The warning is burned in red: the validated caption (white only) has no red pixel in its band.
    bands = [
        pydicom.dcmread(
            io.BytesIO(results.build_overlay_sc(source=source, finding=f, overlay_png=overlay_png(), uid_key="k").data)
        ).pixel_array[results.MIN_SC_WIDTH :]
        for f in (AI, VALIDATED_NEGATIVE)
    ]
    red = [int(np.count_nonzero((b[..., 0] > 200) & (b[..., 1] < 150) & (b[..., 2] < 150))) for b in bands]
    assert red[0] > 100 and red[1] == 0


def test_verified_sr_records_the_radiologist_and_references_the_source_and_the_ai_sr(source: Dataset) -> None:
    ai_sr = results.read_dataset(results.build_ai_sr(source=source, finding=AI, uid_key="study-1").data)
    finding = results.RadiologistFinding(
        finding=ReadingFinding.NORMAL,
        observer_name=results.person_name("Rita Radiologist"),
        organization="General Hospital",
        verified_at=datetime(2026, 11, 30, 15, 4, 5, tzinfo=UTC),
    )
    sr = pydicom.dcmread(
        io.BytesIO(results.build_verified_sr(source=source, finding=finding, uid_key="review-7", ai_sr=ai_sr).data)
    )

    assert (sr.VerificationFlag, sr.PreliminaryFlag, sr.CompletionFlag) == ("VERIFIED", "FINAL", "COMPLETE")
    observer = sr.VerifyingObserverSequence[0]
    assert (str(observer.VerifyingObserverName), observer.VerifyingOrganization) == (
        "Radiologist^Rita",
        "General Hospital",
    )
    assert observer.VerificationDateTime == "20261130150405"
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    evidence = {
        ref.ReferencedSOPInstanceUID
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for ref in series.ReferencedSOPSequence
    }
    assert evidence == {source.SOPInstanceUID, ai_sr.SOPInstanceUID}
    codes = {concept(item): item.ConceptCodeSequence[0].CodeValue for item in items(sr) if item.ValueType == "CODE"}
    assert codes["233604007"] == "272519000"  # the radiologist's word: no pneumonia
    assert codes["121005"] == "121006"  # observer type: person
    assert not [item for item in items(sr) if item.ValueType == "NUM"]  # no AI numbers in the radiologist's SR


@pytest.mark.parametrize(
    ("finding", "finding_type", "tracking_text"),
    [
        (ReadingFinding.OTHER_ABNORMALITY, ("263654008", "SCT"), "other abnormality (not pneumonia)"),
        (ReadingFinding.NON_DIAGNOSTIC, ("111235", "DCM"), "non-diagnostic image"),
    ],
    ids=["other-abnormality", "non-diagnostic"],
)
def test_verified_sr_of_a_finding_without_a_pneumonia_call_codes_it_as_what_it_is(
    source: Dataset, finding: ReadingFinding, finding_type: tuple[str, str], tracking_text: str
) -> None:
    radiologist = results.RadiologistFinding(
        finding=finding,
        observer_name="Radiologist^Rita",
        organization="General Hospital",
        verified_at=datetime(2026, 11, 30, 15, 4, 5, tzinfo=UTC),
    )
    sr = pydicom.dcmread(
        io.BytesIO(results.build_verified_sr(source=source, finding=radiologist, uid_key="review-8").data)
    )

    assert (sr.VerificationFlag, sr.CompletionFlag) == ("VERIFIED", "COMPLETE")
    coded = {concept(item): item.ConceptCodeSequence[0] for item in items(sr) if item.ValueType == "CODE"}
    finding_item = coded["121071"]  # (DCM 121071 "Finding") = the finding type
    assert (finding_item.CodeValue, finding_item.CodingSchemeDesignator) == finding_type
    # Not coded as pneumonia present or absent: no pneumonia evaluation at all.
    assert "233604007" not in coded
    assert not {"52101004", "272519000"} & {code.CodeValue for code in coded.values()}
    texts = [str(item.TextValue) for item in items(sr) if item.ValueType == "TEXT"]
    assert any(tracking_text in text for text in texts)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (overlay_png(), "not a readable DICOM file"),
        (b"", "not a readable DICOM file"),
    ],
)
def test_a_source_that_is_not_dicom_cannot_make_results(data: bytes, message: str) -> None:
    with pytest.raises(results.ResultBuildError, match=message):
        results.read_source_header(data)


def test_a_source_without_a_study_uid_cannot_make_results(source_bytes: bytes) -> None:
    dataset = pydicom.dcmread(io.BytesIO(source_bytes))
    del dataset.StudyInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer)

    with pytest.raises(results.ResultBuildError, match="no StudyInstanceUID"):
        results.read_source_header(buffer.getvalue())


def test_an_unreadable_overlay_cannot_make_the_sc(source: Dataset) -> None:
    with pytest.raises(results.ResultBuildError, match="overlay is not a readable image"):
        results.build_overlay_sc(source=source, finding=AI, overlay_png=b"not a png", uid_key="k")


@pytest.mark.parametrize(("name", "expected"), [("Rita van Dijk", "van Dijk^Rita"), ("rita", "rita"), ("", "Unknown")])
def test_person_name_puts_the_family_name_first(name: str, expected: str) -> None:
    assert results.person_name(name) == expected


# --- Real DICOM tools ---------------------------------------------------------------------------------------------

needs_tools = pytest.mark.skipif(not peer_tools_available(), reason="dciodvfy/dsrdump missing: make pacs-peers")


def _build_all(source: Dataset, tmp_path: Path) -> dict[str, Path]:
    ai_sr = results.build_ai_sr(source=source, finding=AI, uid_key="study-1")
    sc = results.build_overlay_sc(source=source, finding=AI, overlay_png=overlay_png(), uid_key="study-1")
    verified = results.build_verified_sr(
        source=source,
        finding=results.RadiologistFinding(
            ReadingFinding.PNEUMONIA, "Radiologist^Rita", "General Hospital", datetime.now(UTC)
        ),
        uid_key="review-1",
        ai_sr=results.read_dataset(ai_sr.data),
    )
    paths = {}
    for name, built in (("ai-sr", ai_sr), ("overlay-sc", sc), ("verified-sr", verified)):
        paths[name] = tmp_path / f"{name}.dcm"
        paths[name].write_bytes(built.data)
    return paths


@pytest.mark.pacs
@needs_tools
@pytest.mark.parametrize("body_part", ["CHEST", None])
def test_dciodvfy_finds_no_errors_in_objects_built_from_a_clean_source(
    source: Dataset, tmp_path: Path, body_part: str | None
) -> None:
    if body_part is None:
        del source.BodyPartExamined  # the SC gets CHEST: without a body part dciodvfy asks for Laterality
    for name, path in _build_all(source, tmp_path).items():
        assert dciodvfy_errors(path) == [], name


# The RSNA files carry PatientAge as two digits ("54"), not the AS form "054Y". The SRs copy the patient module
# as it is (a PACS matches on it), so dciodvfy reports that one error, inherited from the source, and no other.
INHERITED_FROM_RSNA = "Error - </PatientAge(0010,1010)[1]> - Value invalid for this VR [AS]"


@pytest.mark.pacs
@needs_tools
def test_dciodvfy_on_objects_built_from_a_real_rsna_file_lists_only_inherited_errors(tmp_path: Path) -> None:
    root = os.environ.get("PNEUMO_SAMPLE_DATA")
    files = sorted(Path(root, "dicom", "rsna").glob("**/*.dcm"))[:1] if root else []
    if not files:
        pytest.skip("PNEUMO_SAMPLE_DATA is not set (or has no RSNA DICOM files)")
    source = results.read_source_header(files[0].read_bytes())
    source_errors = dciodvfy_errors(files[0])
    for name, path in _build_all(source, tmp_path).items():
        errors = dciodvfy_errors(path)
        unexplained = [e for e in errors if not e.startswith(INHERITED_FROM_RSNA)]
        assert unexplained == [], name
        if errors:  # an error we list as inherited must be in the source too
            assert any(e.startswith(INHERITED_FROM_RSNA) for e in source_errors), name


@pytest.mark.pacs
@needs_tools
def test_dsrdump_shows_tid_1500_pneumoweb_the_version_and_the_probability(source: Dataset, tmp_path: Path) -> None:
    dump = dsrdump(_build_all(source, tmp_path)["ai-sr"])

    assert "Comprehensive SR Document" in dump
    assert "TID 1500 (DCMR)" in dump
    assert '(111001,DCM,"Algorithm Name")="PneumoWeb"' in dump
    assert '(111003,DCM,"Algorithm Version")="v20261130-x"' in dump
    assert '(122157,DCM,"Probability")="0.8123"' in dump
    assert '(121071,DCM,"Finding")=(233604007,SCT,"Pneumonia")' in dump
    assert "Preliminary Flag    : PRELIMINARY" in dump and "Verification Flag   : UNVERIFIED" in dump


@pytest.mark.pacs
@needs_tools
@pytest.mark.parametrize("finding", [ReadingFinding.OTHER_ABNORMALITY, ReadingFinding.NON_DIAGNOSTIC], ids=str)
def test_dciodvfy_finds_no_errors_in_a_verified_sr_without_a_pneumonia_call(
    source: Dataset, tmp_path: Path, finding: ReadingFinding
) -> None:
    radiologist = results.RadiologistFinding(finding, "Radiologist^Rita", "General Hospital", datetime.now(UTC))
    path = tmp_path / "verified-sr.dcm"
    path.write_bytes(results.build_verified_sr(source=source, finding=radiologist, uid_key="review-9").data)
    assert dciodvfy_errors(path) == []
