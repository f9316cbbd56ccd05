"""Acceptance tests 5 (results half) and 7 of issue 9, against a real Orthanc and a real Celery worker.

A DICOM study uploaded to PneumoWeb is screened by the worker; its AI SR and Grad-CAM Secondary Capture go back to
Orthanc by C-STORE (one Orthanc) and STOW-RS (a second one, through its DICOMweb server), where the REST API finds
them under the source's Study Instance UID, `dsrdump` reads the SR and `/instances/{id}/preview` renders the SC. The
radiologist's verified SR follows a review. With the PACS down the send ends `failed` with a reason after its
retries, the study stays completed, and a resend once the PACS is back succeeds.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pydicom
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from diagnosis.models import AuditAction, AuditEvent, DicomNode, ResultObject, ResultSend, Study
from diagnosis.services import dispatch
from diagnosis.services.pacs_results_recovery import result_sends_resend
from diagnosis.services.reviews import review_create
from tests.factories import PredictionFactory, StudyFactory
from tests.integration.conftest import WorkerProcess, wait_for
from tests.pacs.orthanc import Orthanc, orthanc_available
from tests.pacs.results_support import dsrdump, peer_tools_available, synthetic_dx

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pacs,
    pytest.mark.skipif(not orthanc_available(), reason="Orthanc with DICOMweb missing: make pacs-peers"),
    pytest.mark.skipif(not peer_tools_available(), reason="dsrdump missing: make pacs-peers"),
]

SEND_TIMEOUT = 120


@pytest.fixture(scope="module")
def orthancs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Orthanc, Orthanc]]:
    """Two PACS: one receives by C-STORE, the other by STOW-RS, so each path is seen to land on its own."""
    dimse = Orthanc(tmp_path_factory.mktemp("orthanc-dimse"))
    web = Orthanc(tmp_path_factory.mktemp("orthanc-web"), ae_title="ORTHANCWEB")
    try:
        yield dimse.start(), web.start()
    finally:
        dimse.stop()
        web.stop()


def _worker(worker_env: dict[str, str], tmp_path: Path, **settings: str) -> Iterator[WorkerProcess]:
    env = {**worker_env, **settings}
    worker = WorkerProcess(env, tmp_path / "worker.log", f"pacs-{os.getpid()}@localhost", queues="inference,pacs")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def pacs_worker(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, active_model: Any
) -> Iterator[WorkerProcess]:
    yield from _worker(worker_env, tmp_path)


@pytest.fixture
def impatient_pacs_worker(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, roles: None
) -> Iterator[WorkerProcess]:
    """Gives up on a send after 2 retries, at most 1 s apart (the defaults are 6 retries, up to 300 s apart)."""
    yield from _worker(
        worker_env, tmp_path, PNEUMO_RESULT_SEND_MAX_RETRIES="2", PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS="1"
    )


def _wait_for_sends(study_id: Any, expected: int, worker: WorkerProcess) -> list[ResultSend]:
    """The study's sends once there are ``expected`` of them and none is pending any more."""
    settled = wait_for(lambda: _sends_settled(study_id, expected), timeout=SEND_TIMEOUT, on_timeout=worker.log_tail)
    return cast(list[ResultSend], settled)


def _sends_settled(study_id: Any, expected: int) -> list[ResultSend] | None:
    sends = list(ResultSend.objects.filter(result__study_id=study_id).select_related("result"))
    if len(sends) == expected and all(s.status != ResultSend.Status.PENDING for s in sends):
        return sends
    return None


def _kinds_in(orthanc: Orthanc, study_uid: str) -> dict[str, dict[str, Any]]:
    """SOP Instance UID → Orthanc instance (with its tags), for every instance Orthanc holds under the study."""
    return {i["MainDicomTags"]["SOPInstanceUID"]: i for i in orthanc.find_instances(study_uid)}


def test_a_screened_dicom_study_sends_its_sr_and_sc_to_orthanc_by_c_store_and_stow_rs(
    orthancs: tuple[Orthanc, Orthanc], pacs_worker: WorkerProcess, tmp_path: Path
) -> None:
    dimse, web = orthancs
    DicomNode.objects.create(
        name="orthanc-dimse", ae_title=dimse.ae_title, host="127.0.0.1", port=dimse.dicom_port, receives_results=True
    )
    DicomNode.objects.create(name="orthanc-web", dicomweb_url=f"{web.url}/dicom-web/", receives_results=True)
    integrator = User.objects.create_user("modality-gateway")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=integrator)[1]}")
    source = synthetic_dx(size=256, patient_id="PW-ORTHANC")
    study_uid = pydicom.dcmread(io.BytesIO(source)).StudyInstanceUID

    response = api.post("/api/v1/studies/", {"file": io.BytesIO(source)}, format="multipart")
    assert response.status_code == 202, response.content
    study_id = response.json()["id"]

    sends = _wait_for_sends(study_id, 4, pacs_worker)
    assert sorted((s.result.kind, s.node_name, s.status, s.attempts) for s in sends) == [
        ("ai-sr", "orthanc-dimse", "sent", 1),
        ("ai-sr", "orthanc-web", "sent", 1),
        ("overlay-sc", "orthanc-dimse", "sent", 1),
        ("overlay-sc", "orthanc-web", "sent", 1),
    ]
    sent = AuditEvent.objects.filter(action=AuditAction.RESULT_SENT, subject_id=study_id)
    assert sorted((e.details["node"], e.details["via"]) for e in sent) == [
        ("orthanc-dimse", "c-store"),
        ("orthanc-dimse", "c-store"),
        ("orthanc-web", "stow-rs"),
        ("orthanc-web", "stow-rs"),
    ]
    objects = {obj.kind: obj for obj in ResultObject.objects.filter(study_id=study_id)}
    for orthanc in (dimse, web):
        held = _kinds_in(orthanc, study_uid)
        assert set(held) == {objects["ai-sr"].sop_instance_uid, objects["overlay-sc"].sop_instance_uid}
        sc_id = held[objects["overlay-sc"].sop_instance_uid]["ID"]
        preview = orthanc.api.get(f"{orthanc.url}/instances/{sc_id}/preview", timeout=30)
        assert preview.status_code == 200 and preview.headers["Content-Type"].startswith("image/")

    # The SR as Orthanc holds it: TID 1500, PneumoWeb and the model version, the study's probability.
    sr_path = tmp_path / "sr-from-orthanc.dcm"
    sr_path.write_bytes(dimse.instance_file(_kinds_in(dimse, study_uid)[objects["ai-sr"].sop_instance_uid]["ID"]))
    dump = dsrdump(sr_path)
    probability = Study.objects.get(id=study_id).predictions.get(is_shadow=False).probability
    assert "TID 1500 (DCMR)" in dump
    assert '(111001,DCM,"Algorithm Name")="PneumoWeb"' in dump
    assert '(111003,DCM,"Algorithm Version")="integration-demo"' in dump
    assert f'(122157,DCM,"Probability")="{_ds_decimal(probability)}"' in dump

    # The radiologist's word follows: a verified SR in the same study, in both PACS.
    radiologist = User.objects.create_user("dr-orthanc", first_name="Rita", last_name="Radiologist")
    radiologist.groups.add(Group.objects.get(name="radiologist"))
    review = review_create(
        study=Study.objects.get(id=study_id), reviewer=radiologist, finding="PNEUMONIA", comment="Consolidation."
    )
    _wait_for_sends(study_id, 6, pacs_worker)
    verified = ResultObject.objects.get(review=review)
    assert set(verified.sends.values_list("status", flat=True)) == {"sent"}
    for orthanc in (dimse, web):
        held = _kinds_in(orthanc, study_uid)[verified.sop_instance_uid]
        stored = pydicom.dcmread(io.BytesIO(orthanc.instance_file(held["ID"])))
        assert (stored.VerificationFlag, str(stored.VerifyingObserverSequence[0].VerifyingObserverName)) == (
            "VERIFIED",
            "Radiologist^Rita",
        )


@pytest.mark.django_db
def test_the_admin_echo_button_reaches_orthanc_by_c_echo_and_its_dicomweb_server(
    orthancs: tuple[Orthanc, Orthanc], admin_user: Any
) -> None:
    dimse, web = orthancs
    by_dimse = DicomNode.objects.create(
        name="o-dimse", ae_title=dimse.ae_title, host="127.0.0.1", port=dimse.dicom_port
    )
    by_web = DicomNode.objects.create(name="o-web", dicomweb_url=f"{web.url}/dicom-web", sends_studies=False)
    client = Client()
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")

    response = client.post(
        reverse("admin:diagnosis_dicomnode_changelist"),
        {"action": "test_connection", "_selected_action": [by_dimse.pk, by_web.pk]},
        follow=True,
    )

    text = response.content.decode()
    assert f"C-ECHO to {dimse.ae_title}@127.0.0.1:{dimse.dicom_port} succeeded" in text
    assert "DICOMweb server of node o-web answered (QIDO-RS 200)" in text


def _ds_decimal(value: float) -> str:
    """How highdicom writes a NUM value (DS): the shortest repr that round-trips, at most 16 characters."""
    return str(pydicom.valuerep.DSfloat(round(value, 6), auto_format=True))


def test_with_the_pacs_down_the_send_fails_after_its_retries_and_a_resend_succeeds_once_it_is_back(
    orthancs: tuple[Orthanc, Orthanc], impatient_pacs_worker: WorkerProcess
) -> None:
    dimse, _ = orthancs
    DicomNode.objects.create(
        name="orthanc-dimse", ae_title=dimse.ae_title, host="127.0.0.1", port=dimse.dicom_port, receives_results=True
    )
    study = StudyFactory(completed=True, format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))
    PredictionFactory(study=study, probability=0.3)
    study_uid = pydicom.dcmread(study.file.open("rb")).StudyInstanceUID
    dimse.stop()
    try:
        dispatch.enqueue_on_commit(dispatch.STUDY_RESULTS_CREATE, str(study.id))
        sends = _wait_for_sends(study.id, 2, impatient_pacs_worker)
    finally:
        dimse.start()
    for send in sends:
        assert (send.status, send.attempts, send.sent_at) == ("failed", 3, None)
        assert f"Could not connect to {dimse.ae_title}@127.0.0.1:{dimse.dicom_port}" in send.error
    study.refresh_from_db()
    assert study.status == Study.Status.COMPLETED
    assert AuditEvent.objects.filter(action=AuditAction.RESULT_SEND_FAILED, subject_id=str(study.id)).count() == 2
    assert dimse.find_instances(study_uid) == []

    assert result_sends_resend(sends=ResultSend.objects.filter(result__study=study)) == 2
    sends = _wait_for_sends(study.id, 2, impatient_pacs_worker)
    assert {(s.status, s.attempts, s.error) for s in sends} == {("sent", 1, "")}
    assert len(dimse.find_instances(study_uid)) == 2
