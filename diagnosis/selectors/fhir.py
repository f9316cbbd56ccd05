"""What the FHIR DiagnosticReport of a study says, gathered from the models (the builder, interop.fhir, sees none)."""

from __future__ import annotations

from django.conf import settings

from diagnosis.interop.fhir import AiResult, RadiologistReading, ReportInput
from diagnosis.interop.findings import ReadingFinding
from diagnosis.models import Review, Study
from diagnosis.selectors.studies import study_origin, study_primary_prediction


def _reviews_newest_first(study: Study) -> list[Review]:
    cached: list[Review] | None = getattr(study, "reviews_newest_first", None)
    if cached is not None:
        return cached
    return list(study.reviews.select_related("reviewer").order_by("-created_at"))


def study_fhir_report_input(study: Study) -> ReportInput:
    """The report's content for a study fetched by ``study_get_visible_to`` (prefetched: no extra queries).

    The caller checks that the study is completed; a study without a primary prediction still gets a report once
    reviewed (the radiologist's finding alone).
    """
    origin = study_origin(study)
    prediction = study_primary_prediction(study)
    ai = None
    if prediction is not None:
        version = prediction.model_version
        ai = AiResult(
            pneumonia=prediction.label == prediction.Label.PNEUMONIA,
            probability=prediction.probability,
            threshold=prediction.threshold,
            model_version=version.version,
            validated=version.validated,
            completed_at=study.completed_at or prediction.created_at,
            population=version.population or str(settings.PNEUMO_POPULATION_NOTE),
        )
    readings = tuple(
        RadiologistReading(
            finding=ReadingFinding(review.finding),
            reviewer=review.reviewer.get_full_name() or review.reviewer.get_username(),
            reviewed_at=review.created_at,
            comment=review.comment,
        )
        for review in _reviews_newest_first(study)
    )
    return ReportInput(
        study_id=study.id,
        received_at=study.created_at,
        patient_id=study.patient_id,
        patient_id_system=str(settings.PNEUMO_FHIR_PATIENT_ID_SYSTEM),
        accession_number=study.accession_number,
        study_instance_uid=origin.study_instance_uid,
        study_date=origin.study_date,
        source_description=f"{origin.source_label} {study.get_format_display()}",
        ai=ai,
        readings=readings,
    )
