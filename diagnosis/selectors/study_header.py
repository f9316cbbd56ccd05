"""What the study page's header shows: who the patient is, what the image is, and whether the model was made for it.

Readable labels for the DICOM metadata the upload recorded (``sop_instance_uid`` → "SOP Instance UID"), the
identifiers folded apart from the clinical facts, and the intended-use warnings recorded with the prediction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from diagnosis import ml
from diagnosis.models import ModelVersion, Prediction, Study
from diagnosis.selectors.studies import StudyOrigin
from diagnosis.selectors.worklist import age_display, sex_display

#: Readable names of the metadata keys mlcore records (mlcore.dicom.DicomMetadata), in display order.
METADATA_LABELS: dict[str, str] = {
    "patient_id": "Patient ID",
    "patient_name": "Patient name",
    "patient_age": "Patient age",
    "patient_sex": "Patient sex",
    "accession_number": "Accession number",
    "study_date": "Study date",
    "study_time": "Study time",
    "study_description": "Study description",
    "modality": "Modality",
    "view_position": "View position",
    "body_part_examined": "Body part examined",
    "photometric_interpretation": "Photometric interpretation",
    "rows": "Rows",
    "columns": "Columns",
    "study_instance_uid": "Study Instance UID",
    "series_instance_uid": "Series Instance UID",
    "sop_instance_uid": "SOP Instance UID",
    "sop_class_uid": "SOP Class UID",
    "transfer_syntax_uid": "Transfer Syntax UID",
}
_UID_KEYS = {key for key in METADATA_LABELS if key.endswith("_uid")}
_MODALITIES = {"CR": "CR (computed radiography)", "DX": "DX (digital radiography)"}


def metadata_label(key: str) -> str:
    """The readable label of a metadata key; unknown keys read as a sentence ("body_mass" → "Body mass")."""
    if key in METADATA_LABELS:
        return METADATA_LABELS[key]
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class StudyHeader:
    patient_id: str
    patient_name: str
    age: str
    sex: str
    view_position: str
    modality: str
    accession_number: str
    study_date: dt.date | None
    is_dicom: bool
    warnings: list[dict[str, str]]
    population: str
    population_text: bool  # a population is named, though perhaps without checkable ranges
    intended_use: dict[str, Any] | None
    facts: list[tuple[str, str]] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)


def study_header(
    *, study: Study, origin: StudyOrigin, prediction: Prediction | None, model_version: ModelVersion
) -> StudyHeader:
    """The header of a study page (no query: everything is on the study, its prediction and its version)."""
    metadata: dict[str, Any] = study.dicom_metadata or {}
    facts: list[tuple[str, str]] = []
    identifiers: list[tuple[str, str]] = []
    for key in [*METADATA_LABELS, *sorted(set(metadata) - set(METADATA_LABELS))]:
        value = metadata.get(key)
        if value in (None, ""):
            continue
        (identifiers if key in _UID_KEYS else facts).append((metadata_label(key), str(value)))
    intended_use = ml.model_intended_use(model_version.manifest)
    population = str((intended_use or {}).get("population") or model_version.population or "").strip().rstrip(".")
    modality = str(metadata.get("modality") or "")
    return StudyHeader(
        patient_id=study.patient_id,
        patient_name=origin.patient_name,
        age=age_display(str(metadata.get("patient_age") or "")),
        sex=sex_display(str(metadata.get("patient_sex") or "")),
        view_position=str(metadata.get("view_position") or ""),
        modality=_MODALITIES.get(modality, modality),
        accession_number=study.accession_number,
        study_date=origin.study_date,
        is_dicom=study.format == Study.Format.DICOM,
        warnings=list(prediction.intended_use_warnings or []) if prediction is not None else [],
        population=population or ml.NO_POPULATION,
        population_text=bool(population),
        intended_use=intended_use,
        facts=facts,
        identifiers=identifiers,
    )
