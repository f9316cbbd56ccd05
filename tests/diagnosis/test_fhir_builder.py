"""diagnosis.interop.fhir: the pure DiagnosticReport builder, from plain dataclasses (no database)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from diagnosis.interop.fhir import (
    DICOM_CODES,
    SNOMED,
    AiResult,
    RadiologistReading,
    ReportInput,
    diagnostic_report,
    report_status,
)
from diagnosis.interop.findings import ReadingFinding

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
STUDY_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def ai(*, pneumonia: bool = True, validated: bool = True) -> AiResult:
    return AiResult(
        pneumonia=pneumonia,
        probability=0.8 if pneumonia else 0.1,
        threshold=0.42,
        model_version="resnet50-v3",
        validated=validated,
        completed_at=NOW,
        population="Pediatric chest X-rays (Kermany et al.)",
    )


def reading(pneumonia: bool | ReadingFinding, minutes: int = 0) -> RadiologistReading:
    when = NOW + dt.timedelta(minutes=minutes)
    if isinstance(pneumonia, ReadingFinding):
        finding = pneumonia
    else:
        finding = ReadingFinding.PNEUMONIA if pneumonia else ReadingFinding.NORMAL
    return RadiologistReading(finding=finding, reviewer="Dr Rita Ray", reviewed_at=when)


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ((), "preliminary"),
        ((True,), "final"),
        ((True, True), "final"),  # reviewed again, same finding: nothing changed
        ((False, True), "amended"),
        ((True, False, True), "amended"),  # changed and changed back: it was amended after being final
    ],
)
def test_the_status_follows_the_reviews(findings: tuple[bool, ...], expected: str) -> None:
    data = ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(), readings=tuple(reading(f) for f in findings))
    assert report_status(data) == expected
    assert diagnostic_report(data)["status"] == expected


def test_a_negative_ai_result_is_coded_as_pneumonia_known_absent() -> None:
    report = diagnostic_report(ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(pneumonia=False)))
    assert report["conclusionCode"][0]["coding"][0]["code"] == "233604007:408729009=410516002"
    observation = next(r for r in report["contained"] if r["id"] == "ai-finding")
    assert observation["valueCodeableConcept"]["coding"][0]["code"] == "2667000"
    assert observation["interpretation"][0]["coding"][0]["code"] == "NEG"
    assert "no pneumonia detected" in report["conclusion"]


def test_an_unvalidated_model_and_its_population_are_on_the_device() -> None:
    report = diagnostic_report(ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(validated=False)))
    device = next(r for r in report["contained"] if r["resourceType"] == "Device")
    notes = [note["text"] for note in device["note"]]
    assert any("not validated" in note for note in notes)
    assert any("Kermany" in note for note in notes)


def test_without_patient_id_or_accession_the_report_has_no_subject_or_order() -> None:
    report = diagnostic_report(ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai()))
    assert "subject" not in report and "basedOn" not in report
    assert report["effectiveDateTime"] == NOW.isoformat()  # no DICOM study date: when it was received


def test_a_patient_id_system_is_carried_when_configured() -> None:
    data = ReportInput(
        study_id=STUDY_ID, received_at=NOW, patient_id="MRN1", patient_id_system="urn:oid:1.2.3.4", ai=ai()
    )
    assert diagnostic_report(data)["subject"]["identifier"] == {"system": "urn:oid:1.2.3.4", "value": "MRN1"}


def test_the_narrative_escapes_a_comment() -> None:
    review = RadiologistReading(
        finding=ReadingFinding.PNEUMONIA, reviewer="Dr <b>", reviewed_at=NOW, comment="<script>x</script>"
    )
    report = diagnostic_report(ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(), readings=(review,)))
    assert "<script>" not in report["text"]["div"]
    assert "&lt;script&gt;" in report["text"]["div"]
    DiagnosticReport.model_validate(json.loads(json.dumps(report)))


def test_a_naive_datetime_is_refused() -> None:
    naive = dt.datetime(2026, 11, 30, 15, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="timezone-aware"):
        diagnostic_report(ReportInput(study_id=STUDY_ID, received_at=naive))


@pytest.mark.parametrize(
    ("finding", "value", "conclusion_codes", "conclusion"),
    [
        (
            ReadingFinding.OTHER_ABNORMALITY,
            (SNOMED, "263654008"),
            [(SNOMED, "263654008")],
            "Radiologist's finding: Other abnormality (not pneumonia).",
        ),
        (
            ReadingFinding.NON_DIAGNOSTIC,
            (DICOM_CODES, "111235"),
            [],
            "Radiologist's finding: Non-diagnostic image (no reading possible).",
        ),
    ],
    ids=["other-abnormality", "non-diagnostic"],
)
def test_a_finding_without_a_pneumonia_call_is_not_coded_as_pneumonia_present_or_absent(
    finding: ReadingFinding, value: tuple[str, str], conclusion_codes: list[tuple[str, str]], conclusion: str
) -> None:
    data = ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(pneumonia=True), readings=(reading(finding),))

    report = diagnostic_report(data)

    assert report["status"] == "final"
    assert report["conclusion"].startswith(conclusion)
    assert [(c["system"], c["code"]) for cc in report.get("conclusionCode", []) for c in cc["coding"]] == (
        conclusion_codes
    )
    [observation] = [r for r in report["contained"] if r["id"] == "radiologist-finding"]
    assert [(c["system"], c["code"]) for c in observation["code"]["coding"]] == [(DICOM_CODES, "121071")]
    assert [(c["system"], c["code"]) for c in observation["valueCodeableConcept"]["coding"]] == [value]
    # Nothing in the radiologist's observation says pneumonia present or absent.
    assert "233604007" not in json.dumps(observation) and "2667000" not in json.dumps(observation)
    DiagnosticReport.model_validate(json.loads(json.dumps(report)))
    # Changing a Normal reading to Non-diagnostic amends the report.
    amended = ReportInput(study_id=STUDY_ID, received_at=NOW, ai=ai(), readings=(reading(finding, 5), reading(False)))
    assert report_status(amended) == "amended"
