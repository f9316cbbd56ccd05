"""GET /api/v1/studies/{id}/fhir/: a FHIR R4B DiagnosticReport that validates, preliminary (AI) or final (reviewed).

Acceptance test 8 of issue 9: the DiagnosticReport of a reviewed study validates and carries the radiologist's
finding. Every report is parsed back with ``fhir.resources.R4B`` models, contained Observations included.
"""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion, Study
from tests.dicom_factories import pacs_study
from tests.factories import ModelVersionFactory, PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db

SNOMED = "http://snomed.info/sct"


def fhir_url(study: Study) -> str:
    return f"/api/v1/studies/{study.id}/fhir/"


def get_report(client: APIClient, study: Study) -> tuple[dict[str, Any], DiagnosticReport]:
    response = client.get(fhir_url(study))
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/fhir+json"
    body = response.json()
    return body, DiagnosticReport.model_validate(body)


def contained(report: DiagnosticReport, id_: str) -> Any:
    return next(resource for resource in report.contained or [] if resource.id == id_)


def codes(concepts: Any) -> list[tuple[str, str]]:
    return [(coding.system, coding.code) for concept in concepts for coding in concept.coding]


def component_value(observation: Observation, code: str) -> float:
    component = next(c for c in observation.component or [] if c.code.coding[0].code == code)
    return float(component.valueQuantity.value)


def test_a_completed_study_gets_a_preliminary_report_of_the_ai_finding(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory(probability=0.73, study__patient_id="PAT-9", study__accession_number="ACC-9").study

    body, report = get_report(radiologist_client, study)

    assert report.status == "preliminary"
    assert codes(report.category) == [("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD")]
    assert codes([report.code]) == [("http://loinc.org", "18748-4")]
    assert codes(report.conclusionCode) == [(SNOMED, "233604007")]
    assert "not reviewed by a radiologist" in report.conclusion
    assert report.subject.identifier.value == "PAT-9"
    assert report.basedOn[0].identifier.value == "ACC-9"
    assert report.performer is None and report.resultsInterpreter is None
    [result] = report.result
    ai = contained(report, "ai-finding")
    assert (result.reference, ai.status) == ("#ai-finding", "preliminary")
    assert codes([ai.code]) == [(SNOMED, "233604007")]
    assert codes([ai.valueCodeableConcept]) == [(SNOMED, "52101004")]  # present
    assert component_value(ai, "pneumonia-probability") == pytest.approx(0.73)
    assert component_value(ai, "decision-threshold") == pytest.approx(serving_model_version.threshold)
    device = contained(report, "ai-model")
    assert (device.deviceName[0].name, device.version[0].value) == ("PneumoWeb", serving_model_version.version)
    assert ai.device.reference == "#ai-model"
    # A PNG upload has no Study Instance UID: the study is referenced by PneumoWeb's own identifier, and says so.
    [imaging] = report.imagingStudy
    assert (imaging.identifier.system, imaging.identifier.value) == ("urn:ietf:rfc:3986", f"urn:uuid:{study.id}")
    assert "no DICOM Study Instance UID" in imaging.display
    assert body["id"] == str(study.id)


def test_a_reviewed_study_gets_a_final_report_with_the_radiologists_finding(
    radiologist: Any, radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    # Acceptance 8: the AI said pneumonia, the radiologist overrides it to normal through the API.
    study = PredictionFactory(probability=0.91).study
    review = radiologist_client.post(
        f"/api/v1/studies/{study.id}/review/", {"finding": "NORMAL", "comment": "Thymus, not consolidation."}
    )
    assert review.status_code == 201

    _, report = get_report(radiologist_client, study)

    assert report.status == "final"
    assert codes(report.conclusionCode) == [(SNOMED, "233604007:408729009=410516002")]  # pneumonia known absent
    assert report.conclusion.startswith("Radiologist's finding: No pneumonia. Comment: Thymus, not consolidation.")
    assert [ref.display for ref in report.resultsInterpreter] == [radiologist.username]
    assert [ref.display for ref in report.performer] == [radiologist.username]
    reading = contained(report, "radiologist-finding")
    assert (reading.status, codes([reading.valueCodeableConcept])) == ("final", [(SNOMED, "2667000")])  # absent
    assert reading.performer[0].display == radiologist.username
    # The AI's own observation is kept beside it, still preliminary, with what it said.
    ai = contained(report, "ai-finding")
    assert (ai.status, codes([ai.valueCodeableConcept])) == ("preliminary", [(SNOMED, "52101004")])
    assert [result.reference for result in report.result] == ["#ai-finding", "#radiologist-finding"]


def test_a_later_review_that_changes_the_finding_amends_the_report(
    radiologist_client: APIClient, other_radiologist: Any, api_client_for: Any, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory(probability=0.2).study
    assert radiologist_client.post(f"/api/v1/studies/{study.id}/review/", {"finding": "NORMAL"}).status_code == 201
    assert get_report(radiologist_client, study)[1].status == "final"
    # Changing a standing review is an explicit amendment with a reason (issue 10).
    second = api_client_for(other_radiologist).post(
        f"/api/v1/studies/{study.id}/review/", {"finding": "PNEUMONIA", "amend": True, "comment": "RLL opacity."}
    )
    assert second.status_code == 201

    _, report = get_report(radiologist_client, study)

    assert report.status == "amended"
    assert codes(report.conclusionCode) == [(SNOMED, "233604007")]
    assert [ref.display for ref in report.resultsInterpreter] == [other_radiologist.username]


def test_a_pacs_study_references_its_imaging_study_by_study_instance_uid(
    radiologist_client: APIClient, serving_model_version: ModelVersion
) -> None:
    [first, second] = pacs_study(images=2, study_instance_uid="1.2.826.0.1.3680043.10.99.7", accession_number="A77")

    for study in (first, second):
        _, report = get_report(radiologist_client, study)
        [imaging] = report.imagingStudy
        assert (imaging.type, imaging.identifier.system, imaging.identifier.value) == (
            "ImagingStudy",
            "urn:dicom:uid",
            "urn:oid:1.2.826.0.1.3680043.10.99.7",
        )
        assert report.effectiveDateTime.isoformat() == "2026-11-30"
        assert report.basedOn[0].identifier.value == "A77"
        assert contained(report, "ai-finding").derivedFrom[0].identifier.value == imaging.identifier.value


def test_an_unvalidated_model_is_named_as_such_in_the_report(radiologist_client: APIClient) -> None:
    demo = ModelVersionFactory(version="demo-untrained", validated=False, threshold_calibrated_at=None)
    study = PredictionFactory(study__model_version=demo).study

    _, report = get_report(radiologist_client, study)

    assert "not validated" in report.conclusion
    assert any("not validated" in note.text for note in contained(report, "ai-finding").note)


@pytest.mark.parametrize("status", [Study.Status.QUEUED, Study.Status.PROCESSING, Study.Status.FAILED])
def test_a_study_that_has_not_completed_has_no_report_yet(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion, status: str
) -> None:
    study = StudyFactory(uploaded_by=integrator, status=status)

    response = integrator_client.get(fhir_url(study))

    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == f"The study is {status}: its FHIR report exists once screening has completed."
    assert not AuditEvent.objects.filter(action="study.fhir_viewed").exists()


def test_reading_the_report_is_audited_with_its_status(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory(study__uploaded_by=integrator).study

    integrator_client.get(fhir_url(study), REMOTE_ADDR="10.1.2.3")

    event = AuditEvent.objects.get(action="study.fhir_viewed")
    assert (event.actor, event.subject_type, event.subject_id, event.client_ip, event.details) == (
        integrator,
        "study",
        str(study.id),
        "10.1.2.3",
        {"report_status": "preliminary"},
    )


def test_another_integrator_cannot_learn_the_study_exists(
    other_integrator_client: APIClient, integrator: Any, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory(study__uploaded_by=integrator).study
    response = other_integrator_client.get(fhir_url(study))
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="study.fhir_viewed").exists()


def test_the_study_detail_links_the_report_once_completed(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    done = PredictionFactory(study__uploaded_by=integrator).study
    queued = StudyFactory(uploaded_by=integrator)
    assert (
        integrator_client.get(f"/api/v1/studies/{done.id}/").json()["fhir_url"] == f"http://testserver{fhir_url(done)}"
    )
    assert integrator_client.get(f"/api/v1/studies/{queued.id}/").json()["fhir_url"] is None
