"""Acceptance test 5 of issue 9, the whole loop: Orthanc is the hospital's PACS.

Orthanc's ``POST /modalities/pneumoweb/store`` sends a real two-image chest X-ray study (RSNA, adult, JPEG
baseline) to the DICOM listener. After the stability window the worker screens each image; the AI SR and the
Grad-CAM Secondary Capture of each go back to Orthanc by C-STORE, into the same study. Orthanc's REST API finds them
under the source's Study Instance UID, `dsrdump` reads TID 1500 with PneumoWeb, the version and the probability,
`dciodvfy` finds no error in them except the one they inherit from the source's header, and Orthanc renders the SC.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from diagnosis.models import (
    AuditAction,
    AuditEvent,
    DicomInstance,
    DicomNode,
    DicomStudy,
    ResultObject,
    ResultSend,
    Study,
)
from tests.integration.conftest import WorkerProcess, wait_for
from tests.pacs.listener import Listener
from tests.pacs.orthanc import Orthanc, orthanc_available
from tests.pacs.results_support import dciodvfy_errors, dsrdump, peer_tools_available
from tests.pacs.test_dicom_results import INHERITED_FROM_RSNA

pytestmark = [
    pytest.mark.integration,
    pytest.mark.pacs,
    pytest.mark.skipif(not orthanc_available(), reason="Orthanc with DICOMweb missing: make pacs-peers"),
    pytest.mark.skipif(not peer_tools_available(), reason="dcmtk or dicom3tools missing: make pacs-peers"),
]

SAMPLE_DATA = os.environ.get("PNEUMO_SAMPLE_DATA", "")


def _rsna_study(count: int) -> tuple[str, list[bytes]]:
    """``count`` real RSNA radiographs made into one patient's study (new UIDs, the first file's patient)."""
    files = sorted((Path(SAMPLE_DATA) / "dicom" / "rsna").rglob("*.dcm"))[:count]
    if len(files) < count:
        pytest.skip("needs the RSNA DICOMs under $PNEUMO_SAMPLE_DATA/dicom/rsna")
    study_uid, series_uid = generate_uid(), generate_uid()
    instances, patient = [], pydicom.dcmread(files[0], stop_before_pixels=True)
    for number, path in enumerate(files, start=1):
        dataset = pydicom.dcmread(path)
        dataset.PatientID, dataset.PatientName = patient.PatientID, patient.PatientName
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study_uid, series_uid
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.InstanceNumber = number
        dataset.AccessionNumber = "RT0001"
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        instances.append(buffer.getvalue())
    return study_uid, instances


@pytest.fixture
def pacs_loop(
    tmp_path: Path, worker_env: dict[str, str], live_broker: None, active_model: Any
) -> Iterator[tuple[Orthanc, Listener, WorkerProcess]]:
    listener = Listener(tmp_path / "listener")
    orthanc = Orthanc(tmp_path / "orthanc", modalities={"pneumoweb": ["PNEUMOWEB", "127.0.0.1", listener.port]})
    orthanc.start()
    DicomNode.objects.create(
        name="orthanc",
        ae_title=orthanc.ae_title,
        host="127.0.0.1",
        port=orthanc.dicom_port,
        sends_studies=True,
        receives_results=True,
    )
    worker = WorkerProcess(
        {**worker_env, "PNEUMO_DICOM_STABILITY_SECONDS": "2"},
        tmp_path / "worker.log",
        f"pacs-loop-{os.getpid()}@localhost",
        queues="inference,pacs",
    )
    listener.start()
    worker.start()
    try:
        yield orthanc, listener, worker
    finally:
        worker.stop()
        listener.stop()
        orthanc.stop()


def _all_sent(study_ids: list[Any]) -> list[ResultSend] | None:
    sends = list(ResultSend.objects.filter(result__study_id__in=study_ids).select_related("result"))
    if len(sends) == 2 * len(study_ids) and all(s.status != ResultSend.Status.PENDING for s in sends):
        return sends
    return None


def test_a_study_stored_from_orthanc_is_screened_and_its_sr_and_sc_land_back_in_the_same_study(
    pacs_loop: tuple[Orthanc, Listener, WorkerProcess], tmp_path: Path
) -> None:
    orthanc, listener, worker = pacs_loop
    study_uid, instances = _rsna_study(2)
    orthanc_study = {orthanc.upload(data)["ParentStudy"] for data in instances}.pop()

    response = orthanc.api.post(
        f"{orthanc.url}/modalities/pneumoweb/store", json={"Resources": [orthanc_study]}, timeout=60
    )
    assert response.status_code == 200, response.text + orthanc.log_text()[-2000:]

    # Landed in PneumoWeb: one DICOM study, one screened Study per image, audited with Orthanc's calling AE.
    dicom_study = DicomStudy.objects.get(study_instance_uid=study_uid)
    assert (dicom_study.calling_ae_title, dicom_study.accession_number) == (orthanc.ae_title, "RT0001")
    studies = wait_for(
        lambda: (
            list(Study.objects.filter(dicom_instance__dicom_study=dicom_study))
            if Study.objects.filter(dicom_instance__dicom_study=dicom_study, status=Study.Status.COMPLETED).count() == 2
            else None
        ),
        timeout=120,
        on_timeout=lambda: (
            f"{list(Study.objects.values_list('status', 'error'))} "
            f"{DicomInstance.objects.count()} instances\n{listener.log_text()[-3000:]}"
        ),
    )
    assert {s.source for s in studies} == {Study.Source.DICOM}
    assert all(s.predictions.filter(is_shadow=False).count() == 1 for s in studies)
    received = AuditEvent.objects.filter(action=AuditAction.DICOM_INSTANCE_RECEIVED)
    assert {e.details.get("calling_ae_title") for e in received} == {orthanc.ae_title}

    # Back in Orthanc, under the source's Study Instance UID: an SR and an SC per image, beside the two sources.
    sends = wait_for(lambda: _all_sent([s.id for s in studies]), timeout=120, on_timeout=worker.log_tail)
    assert {s.status for s in sends} == {ResultSend.Status.SENT}
    held = {i["MainDicomTags"]["SOPInstanceUID"]: i for i in orthanc.find_instances(study_uid)}
    objects = list(ResultObject.objects.filter(study__in=studies))
    assert len(held) == 2 + len(objects) == 6
    assert {o.sop_instance_uid for o in objects} <= set(held)

    for result in objects:
        path = tmp_path / f"{result.kind}-{result.sop_instance_uid}.dcm"
        path.write_bytes(orthanc.instance_file(held[result.sop_instance_uid]["ID"]))
        # dciodvfy: nothing but the patient age the RSNA header stores as "54" instead of "054Y" (the SR copies it).
        assert [e for e in dciodvfy_errors(path) if not e.startswith(INHERITED_FROM_RSNA)] == [], result.kind
        if result.kind == ResultObject.Kind.AI_SR:
            dump = dsrdump(path)
            probability = result.study.predictions.get(is_shadow=False).probability
            assert "TID 1500 (DCMR)" in dump
            assert '(111001,DCM,"Algorithm Name")="PneumoWeb"' in dump
            assert '(111003,DCM,"Algorithm Version")="integration-demo"' in dump
            # highdicom writes a NUM as the shortest DS that round-trips, at most 16 characters.
            written = str(pydicom.valuerep.DSfloat(round(probability, 6), auto_format=True))
            assert f'(122157,DCM,"Probability")="{written}"' in dump
        else:
            preview = orthanc.api.get(f"{orthanc.url}/instances/{held[result.sop_instance_uid]['ID']}/preview")
            assert preview.status_code == 200 and preview.headers["Content-Type"].startswith("image/")

    # The PACS forwards the sources again (a re-route): acknowledged, nothing new is created or screened.
    sources = [
        i["ID"]
        for i in held.values()
        if i["MainDicomTags"]["SOPInstanceUID"] not in {o.sop_instance_uid for o in objects}
    ]
    again = orthanc.api.post(f"{orthanc.url}/modalities/pneumoweb/store", json={"Resources": sources}, timeout=60)
    assert again.status_code == 200, again.text
    assert Study.objects.filter(dicom_instance__dicom_study=dicom_study).count() == 2
