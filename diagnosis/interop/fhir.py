"""FHIR R4B DiagnosticReport (with its Observations) for one screened image: a pure builder over plain dataclasses.

Version: **R4B** (``fhir.resources.R4B``). Most EHR FHIR endpoints in service today speak R4 (4.0.1); R4B (4.3) is
wire-compatible with R4 for DiagnosticReport and Observation, and fhir.resources only ships R5 and R4B.

Shape: one ``DiagnosticReport`` whose Observations (the AI's, and the radiologist's once reviewed) and the AI
``Device`` are *contained* resources. PneumoWeb is not a FHIR server: none of them has an address of its own, and
FHIR prescribes ``contained`` for resources that cannot be identified independently of their container. An EHR
that wants separate resources can lift them out (their ids are stable within the report).

Status:
- ``preliminary``: a completed study nobody has reviewed; the conclusion is the AI's.
- ``final``: a radiologist reviewed it; the conclusion and the coded finding are the radiologist's, who is the
  performer and results interpreter. The AI observation stays ``preliminary`` beside it.
- ``amended``: reviewed more than once and the findings differ (the report changed after it was first final).

Codes:
- ``DiagnosticReport.code`` is LOINC 18748-4 "Diagnostic imaging study": views-agnostic. 36643-5 "XR Chest 2 Views"
  would claim two views and 30746-2 is "Portable XR Chest Views"; a PACS study screened here may be a single PA, AP
  or lateral image, portable or not.
- Category RAD (HL7 v2 table 0074).
- The finding is SNOMED CT 233604007 "Pneumonia" with the value 52101004 "Present" or 2667000 "Absent". The report's
  ``conclusionCode`` is 233604007 when present, and for a negative the post-coordinated SNOMED CT expression
  ``233604007:408729009=410516002`` (Pneumonia, finding context = known absent): SNOMED CT has no pre-coordinated
  "no pneumonia", and "no abnormality detected" would claim more than a pneumonia screen can.
- Findings that make no pneumonia call (issue 10) are not coded as pneumonia present/absent. The radiologist's
  Observation then has the code DCM 121071 "Finding" and the value SNOMED CT 263654008 "Abnormal" (text "Other
  abnormality (not pneumonia)", interpretation ``A``) or DCM 111235 "Unusable - Quality renders image unusable"
  (text "Non-diagnostic image"); ``conclusionCode`` is 263654008 for the first and absent for the second (a
  non-diagnostic image has no conclusion to code: the conclusion text says so).
- The probability and the threshold have no LOINC or SNOMED CT code: they carry PneumoWeb codes
  (:data:`PNEUMOWEB_CODE_SYSTEM`), unit UCUM ``1`` (a ratio in [0, 1]).

The ImagingStudy is referenced by identifier (``urn:dicom:uid`` / ``urn:oid:<Study Instance UID>``). An upload
without a Study Instance UID (PNG, JPEG) has no ImagingStudy anywhere: the reference then carries PneumoWeb's own
study identifier (``urn:ietf:rfc:3986`` / ``urn:uuid:<id>``) and says so in its display.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from diagnosis.interop.findings import ReadingFinding

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
UCUM = "http://unitsofmeasure.org"
DICOM_CODES = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID_SYSTEM = "urn:dicom:uid"
URI_SYSTEM = "urn:ietf:rfc:3986"
# PneumoWeb's own codes for what no standard terminology names (the model's output and its threshold).
PNEUMOWEB_CODE_SYSTEM = "urn:pneumoweb:fhir:ai-result"

REPORT_CODE = {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
PNEUMONIA = {"system": SNOMED, "code": "233604007", "display": "Pneumonia"}
PNEUMONIA_ABSENT = {
    "system": SNOMED,
    "code": "233604007:408729009=410516002",
    "display": "Pneumonia (finding context: known absent)",
}
PRESENT = {"system": SNOMED, "code": "52101004", "display": "Present"}
ABSENT = {"system": SNOMED, "code": "2667000", "display": "Absent"}
POSITIVE = {"system": INTERPRETATION, "code": "POS", "display": "Positive"}
ABNORMAL_INTERPRETATION = {"system": INTERPRETATION, "code": "A", "display": "Abnormal"}
FINDING_CODE = {"system": DICOM_CODES, "code": "121071", "display": "Finding"}
ABNORMAL = {"system": SNOMED, "code": "263654008", "display": "Abnormal"}
UNUSABLE_IMAGE = {"system": DICOM_CODES, "code": "111235", "display": "Unusable - Quality renders image unusable"}
OTHER_ABNORMALITY_TEXT = "Other abnormality (not pneumonia)"
NON_DIAGNOSTIC_TEXT = "Non-diagnostic image"
NEGATIVE = {"system": INTERPRETATION, "code": "NEG", "display": "Negative"}
PROBABILITY_CODE = {
    "system": PNEUMOWEB_CODE_SYSTEM,
    "code": "pneumonia-probability",
    "display": "AI probability of pneumonia",
}
THRESHOLD_CODE = {"system": PNEUMOWEB_CODE_SYSTEM, "code": "decision-threshold", "display": "AI decision threshold"}

AI_OBSERVATION_ID = "ai-finding"
READING_OBSERVATION_ID = "radiologist-finding"
DEVICE_ID = "ai-model"
ALGORITHM_NAME = "PneumoWeb"
DECISION_SUPPORT_NOTE = "AI decision support: not a diagnosis; every finding needs a radiologist's review."
NOT_VALIDATED_NOTE = "AI decision support — not validated: this model version is untrained or unvalidated."


@dataclass(frozen=True)
class AiResult:
    """The primary (never a shadow) prediction of the model version that screened the image."""

    pneumonia: bool
    probability: float
    threshold: float
    model_version: str
    validated: bool
    completed_at: dt.datetime
    population: str = ""


@dataclass(frozen=True)
class RadiologistReading:
    """A radiologist's review; the latest one stands."""

    finding: ReadingFinding
    reviewer: str
    reviewed_at: dt.datetime
    comment: str = ""


@dataclass(frozen=True)
class ReportInput:
    """Everything the report says about one screened image. ``readings`` are newest first."""

    study_id: uuid.UUID
    received_at: dt.datetime
    patient_id: str = ""
    patient_id_system: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    study_date: dt.date | None = None
    source_description: str = ""
    ai: AiResult | None = None
    readings: tuple[RadiologistReading, ...] = ()


def report_status(data: ReportInput) -> str:
    """``preliminary`` (AI only), ``final`` (reviewed) or ``amended`` (reviewed again with a different finding)."""
    if not data.readings:
        return "preliminary"
    return "amended" if len({reading.finding for reading in data.readings}) > 1 else "final"


def _concept(coding: dict[str, str], text: str | None = None) -> dict[str, Any]:
    return {"coding": [dict(coding)], "text": text or coding["display"]}


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"FHIR instants need a timezone-aware datetime. Received: {value!r}")
    return value.isoformat()


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _subject(data: ReportInput) -> dict[str, Any] | None:
    if not data.patient_id:
        return None
    identifier = {"value": data.patient_id}
    if data.patient_id_system:
        identifier["system"] = data.patient_id_system
    return {"type": "Patient", "identifier": identifier}


def imaging_study_reference(data: ReportInput) -> dict[str, Any]:
    """The ImagingStudy by Study Instance UID, or PneumoWeb's study identifier when the image has none."""
    if data.study_instance_uid:
        return {
            "type": "ImagingStudy",
            "identifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{data.study_instance_uid}"},
            "display": f"DICOM study {data.study_instance_uid}",
        }
    return {
        "type": "ImagingStudy",
        "identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{data.study_id}"},
        "display": f"PneumoWeb study {data.study_id} ({data.source_description or 'upload'}; "
        "no DICOM Study Instance UID)",
    }


def _quantity(value: float) -> dict[str, Any]:
    return {"value": round(value, 6), "unit": "probability (0-1)", "system": UCUM, "code": "1"}


def _device(ai: AiResult) -> dict[str, Any]:
    notes = [{"text": NOT_VALIDATED_NOTE}] if not ai.validated else []
    if ai.population:
        notes.append({"text": f"Intended population: {ai.population}"})
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": DEVICE_ID,
        "deviceName": [{"name": ALGORITHM_NAME, "type": "model-name"}],
        "version": [{"value": ai.model_version}],
    }
    if notes:
        device["note"] = notes
    return device


def _finding_value(pneumonia: bool) -> dict[str, Any]:
    return {
        "valueCodeableConcept": _concept(PRESENT if pneumonia else ABSENT),
        "interpretation": [_concept(POSITIVE if pneumonia else NEGATIVE)],
    }


def _reading_value(finding: ReadingFinding) -> dict[str, Any]:
    """The radiologist's value: pneumonia present/absent, or what a finding without a pneumonia call is."""
    if finding == ReadingFinding.OTHER_ABNORMALITY:
        return {
            "code": _concept(FINDING_CODE, "Radiologist's finding"),
            "valueCodeableConcept": _concept(ABNORMAL, OTHER_ABNORMALITY_TEXT),
            "interpretation": [_concept(ABNORMAL_INTERPRETATION)],
        }
    if finding == ReadingFinding.NON_DIAGNOSTIC:
        return {
            "code": _concept(FINDING_CODE, "Radiologist's finding"),
            "valueCodeableConcept": _concept(UNUSABLE_IMAGE, NON_DIAGNOSTIC_TEXT),
        }
    return _finding_value(finding == ReadingFinding.PNEUMONIA)


def _observation_base(data: ReportInput, *, id_: str, status: str, issued: dt.datetime) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id_,
        "status": status,
        "category": [_concept({"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"})],
        "code": _concept(PNEUMONIA),
        "issued": _instant(issued),
        "derivedFrom": [imaging_study_reference(data)],
    }
    if (subject := _subject(data)) is not None:
        observation["subject"] = subject
    if data.study_date is not None:
        observation["effectiveDateTime"] = data.study_date.isoformat()
    return observation


def _ai_observation(data: ReportInput, ai: AiResult) -> dict[str, Any]:
    observation = _observation_base(data, id_=AI_OBSERVATION_ID, status="preliminary", issued=ai.completed_at)
    observation["code"] = _concept(PNEUMONIA, "Pneumonia (AI screening)")
    observation.update(_finding_value(ai.pneumonia))
    observation["method"] = {"text": f"{ALGORITHM_NAME} {ai.model_version}: probability >= threshold is positive"}
    observation["device"] = {"reference": f"#{DEVICE_ID}", "display": f"{ALGORITHM_NAME} {ai.model_version}"}
    observation["component"] = [
        {"code": _concept(PROBABILITY_CODE), "valueQuantity": _quantity(ai.probability)},
        {"code": _concept(THRESHOLD_CODE), "valueQuantity": _quantity(ai.threshold)},
    ]
    notes = [DECISION_SUPPORT_NOTE] + ([NOT_VALIDATED_NOTE] if not ai.validated else [])
    observation["note"] = [{"text": text} for text in notes]
    return observation


def _reading_observation(data: ReportInput, reading: RadiologistReading, status: str) -> dict[str, Any]:
    observation = _observation_base(data, id_=READING_OBSERVATION_ID, status=status, issued=reading.reviewed_at)
    observation.update(_reading_value(reading.finding))
    observation["performer"] = [{"type": "Practitioner", "display": reading.reviewer}]
    if reading.comment:
        observation["note"] = [{"text": reading.comment}]
    return observation


def _ai_sentence(ai: AiResult) -> str:
    finding = "pneumonia suggested" if ai.pneumonia else "no pneumonia detected"
    sentence = (
        f"AI screening ({ALGORITHM_NAME} {ai.model_version}): {finding} "
        f"(probability {_percent(ai.probability)}, threshold {_percent(ai.threshold)})."
    )
    return sentence if ai.validated else f"{sentence} {NOT_VALIDATED_NOTE}"


READING_TEXT = {
    ReadingFinding.PNEUMONIA: "Pneumonia",
    ReadingFinding.NORMAL: "No pneumonia",
    ReadingFinding.OTHER_ABNORMALITY: OTHER_ABNORMALITY_TEXT,
    ReadingFinding.NON_DIAGNOSTIC: f"{NON_DIAGNOSTIC_TEXT} (no reading possible)",
}
CONCLUSION_CODES: dict[ReadingFinding, dict[str, str] | None] = {
    ReadingFinding.PNEUMONIA: PNEUMONIA,
    ReadingFinding.NORMAL: PNEUMONIA_ABSENT,
    ReadingFinding.OTHER_ABNORMALITY: ABNORMAL,
    ReadingFinding.NON_DIAGNOSTIC: None,
}


def _conclusion(data: ReportInput) -> tuple[str, dict[str, str] | None]:
    """The conclusion's text and its code (None: nothing to code, or neither a reading nor an AI result)."""
    ai_text = _ai_sentence(data.ai) if data.ai is not None else ""
    if data.readings:
        latest = data.readings[0]
        text = f"Radiologist's finding: {READING_TEXT[latest.finding]}."
        if latest.comment:
            text += f" Comment: {latest.comment.strip()}"
            text += "" if text.endswith((".", "!", "?")) else "."
        return (f"{text} {ai_text}".strip(), CONCLUSION_CODES[latest.finding])
    if data.ai is None:
        return ("No result.", None)
    ai_code = PNEUMONIA if data.ai.pneumonia else PNEUMONIA_ABSENT
    return (f"Preliminary, not reviewed by a radiologist. {ai_text} {DECISION_SUPPORT_NOTE}", ai_code)


def _narrative(status: str, conclusion: str) -> dict[str, str]:
    body = html.escape(f"Chest X-ray pneumonia screening ({status}). {conclusion}")
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{body}</p></div>'}


def diagnostic_report(data: ReportInput) -> dict[str, Any]:
    """The DiagnosticReport as FHIR JSON (a dict), validated against ``fhir.resources.R4B`` before it is returned.

    Raises:
        ValueError: for a naive datetime, or a report that does not validate (a bug, not an input error).
    """
    status = report_status(data)
    conclusion, conclusion_code = _conclusion(data)
    contained: list[dict[str, Any]] = []
    results: list[dict[str, str]] = []
    if data.ai is not None:
        contained += [_device(data.ai), _ai_observation(data, data.ai)]
        results.append({"reference": f"#{AI_OBSERVATION_ID}", "display": "AI finding (preliminary)"})
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(data.study_id),
        "text": _narrative(status, conclusion),
        "identifier": [{"system": URI_SYSTEM, "value": f"urn:uuid:{data.study_id}"}],
        "status": status,
        "category": [_concept({"system": V2_0074, "code": "RAD", "display": "Radiology"})],
        "code": _concept(REPORT_CODE, "Chest X-ray: pneumonia screening"),
        "imagingStudy": [imaging_study_reference(data)],
        "conclusion": conclusion,
    }
    if data.readings:
        latest = data.readings[0]
        contained.append(_reading_observation(data, latest, status))
        results.append({"reference": f"#{READING_OBSERVATION_ID}", "display": "Radiologist's finding"})
        interpreter = {"type": "Practitioner", "display": latest.reviewer}
        report["performer"] = [interpreter]
        report["resultsInterpreter"] = [interpreter]
        report["issued"] = _instant(latest.reviewed_at)
    elif data.ai is not None:
        report["issued"] = _instant(data.ai.completed_at)
    if conclusion_code is not None:
        report["conclusionCode"] = [_concept(conclusion_code)]
    if contained:
        report["contained"] = contained
        report["result"] = results
    if (subject := _subject(data)) is not None:
        report["subject"] = subject
    if data.accession_number:
        report["basedOn"] = [
            {
                "type": "ServiceRequest",
                "identifier": {
                    "type": _concept({"system": V2_0203, "code": "ACSN", "display": "Accession ID"}),
                    "value": data.accession_number,
                },
            }
        ]
    report["effectiveDateTime"] = (
        data.study_date.isoformat() if data.study_date is not None else _instant(data.received_at)
    )
    DiagnosticReport.model_validate(report)  # raises on anything R4B would refuse
    return report
