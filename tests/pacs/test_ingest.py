"""The ingest service shared by the DICOM listener and STOW-RS: what it stores, what it refuses, and that it is
idempotent. Synthetic datasets only; the real peers are in test_listener.py and test_stow.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, generate_uid

from diagnosis.models import AuditAction, AuditEvent, DicomInstance, DicomNode, DicomStudy, ResultObject
from diagnosis.services.pacs_ingest import IngestStatus, dicom_instance_receive
from tests.factories import StudyFactory
from tests.pacs.dicom_files import CR, CT, SECONDARY_CAPTURE, compressed_bytes, encode, image_bytes, image_dataset

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Invalid value for VR UI")]

C_STORE = DicomStudy.Via.C_STORE


def receive(data: bytes, **kwargs: Any) -> Any:
    kwargs.setdefault("via", C_STORE)
    kwargs.setdefault("calling_ae_title", "ORTHANC")
    kwargs.setdefault("node", None)
    return dicom_instance_receive(data=data, **kwargs)


def test_it_stores_an_image_as_received_under_a_name_of_its_own(storage_dir: Path) -> None:
    study_uid = generate_uid()
    data = image_bytes(study_uid=study_uid, patient_id="P-77", accession="A-88")
    node = DicomNode.objects.create(name="pacs", ae_title="ORTHANC", host="127.0.0.1", port=4242)

    outcome = receive(data, node=node)

    assert outcome.status is IngestStatus.STORED
    instance = DicomInstance.objects.get()
    assert outcome.instance_id == instance.id
    name = str(instance.file.name)
    assert name.startswith("studies/dicom/") and name.endswith(f"{instance.id.hex}.dcm")
    assert study_uid not in name and instance.sop_instance_uid not in name
    assert (storage_dir / name).read_bytes() == data  # the bytes as sent, not re-encoded
    assert not list(storage_dir.rglob(".tmp-*"))
    dicom_study = instance.dicom_study
    assert (dicom_study.study_instance_uid, dicom_study.patient_id, dicom_study.accession_number) == (
        study_uid,
        "P-77",
        "A-88",
    )
    assert str(dicom_study.study_date) == "2026-11-30"
    assert dicom_study.patient_name == "TEST^PACS"
    assert dicom_study.node == node and dicom_study.calling_ae_title == "ORTHANC"
    assert instance.study is None  # screened only after the stability window
    event = AuditEvent.objects.get(action=AuditAction.DICOM_INSTANCE_RECEIVED)
    assert event.details["calling_ae_title"] == "ORTHANC"
    assert event.details["study_instance_uid"] == study_uid


@pytest.mark.parametrize("sop_class", [CR, SECONDARY_CAPTURE])
def test_it_accepts_cr_and_secondary_capture(sop_class: str) -> None:
    assert receive(image_bytes(study_uid=generate_uid(), sop_class=sop_class)).status is IngestStatus.STORED


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless])
def test_it_accepts_compressed_images_without_decoding_them(syntax: str, storage_dir: Path) -> None:
    data = compressed_bytes(syntax, study_uid=generate_uid())
    assert receive(data).status is IngestStatus.STORED
    assert DicomInstance.objects.get().transfer_syntax_uid == syntax


def test_the_same_sop_instance_again_creates_nothing_new(storage_dir: Path) -> None:
    data = image_bytes(study_uid=generate_uid())
    first = receive(data)
    files = sorted(storage_dir.rglob("*.dcm"))

    again = receive(data)

    assert (first.status, again.status) == (IngestStatus.STORED, IngestStatus.DUPLICATE)
    assert again.instance_id == first.instance_id
    assert DicomInstance.objects.count() == 1 and DicomStudy.objects.count() == 1
    assert sorted(storage_dir.rglob("*.dcm")) == files


def test_our_own_result_object_routed_back_by_the_pacs_is_acknowledged_but_never_stored_or_screened(
    stored_files: Callable[[], set[Path]],
) -> None:
    # A PACS that forwards a whole study sends our Grad-CAM Secondary Capture back: the model must not read it.
    own_sc_uid = generate_uid()
    ResultObject.objects.create(
        study=StudyFactory(),
        kind=ResultObject.Kind.OVERLAY_SC,
        sop_class_uid=SECONDARY_CAPTURE,
        sop_instance_uid=own_sc_uid,
        series_instance_uid=generate_uid(),
        file="studies/own-sc.dcm",
    )
    data = image_bytes(study_uid=generate_uid(), sop_class=SECONDARY_CAPTURE, sop_uid=own_sc_uid)
    before = stored_files()

    outcome = receive(data)

    assert outcome.status is IngestStatus.DUPLICATE and outcome.status.ok
    assert DicomInstance.objects.count() == 0 and DicomStudy.objects.count() == 0
    assert stored_files() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_one_instance_store_it_once(stored_files: Callable[[], set[Path]]) -> None:
    data = image_bytes(study_uid=generate_uid())
    before = stored_files()
    outcomes: list[Any] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        try:
            outcomes.append(receive(data))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o.status.value for o in outcomes) == ["duplicate"] * 3 + ["stored"]
    assert DicomInstance.objects.count() == 1
    assert len(stored_files() - before) == 1  # the losers' files were removed


def _assert_refused_without_trace(
    outcome: Any, status: IngestStatus, snapshot: Callable[[], set[Path]], before: set[Path]
) -> None:
    assert outcome.status is status
    assert snapshot() == before
    assert DicomInstance.objects.count() == 0 and DicomStudy.objects.count() == 0
    event = AuditEvent.objects.get(action=AuditAction.DICOM_INSTANCE_REFUSED)
    assert event.details["calling_ae_title"] == "ORTHANC"
    assert event.details["status"] == status.value


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="0-bytes"),
        pytest.param(b"garbage" * 100, id="garbage"),
        pytest.param(b"\0" * 128 + b"DICM" + b"\xff" * 64, id="damaged-meta"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, id="png"),
    ],
)
def test_garbage_is_refused_as_cannot_understand(data: bytes, stored_files: Callable[[], set[Path]]) -> None:
    before = stored_files()
    _assert_refused_without_trace(receive(data), IngestStatus.CANNOT_UNDERSTAND, stored_files, before)


def test_a_truncated_image_is_refused(stored_files: Callable[[], set[Path]]) -> None:
    before = stored_files()
    data = image_bytes(study_uid=generate_uid())[:-1000]
    _assert_refused_without_trace(receive(data), IngestStatus.CANNOT_UNDERSTAND, stored_files, before)


@pytest.mark.parametrize("field", ["sop_uid", "study_uid", "series_uid"])
@pytest.mark.parametrize("template", ["../../tmp/{}", "/tmp/{}"])
def test_path_like_uids_are_refused_and_no_file_is_written_anywhere(
    field: str, template: str, stored_files: Callable[[], set[Path]]
) -> None:
    marker = f"pneumoweb-pacs-{uuid.uuid4().hex}"
    hostile = template.format(marker)
    uids = {"study_uid": generate_uid(), field: hostile}
    before = stored_files()

    outcome = receive(image_bytes(**uids))

    _assert_refused_without_trace(outcome, IngestStatus.CANNOT_UNDERSTAND, stored_files, before)
    assert not Path("/tmp", marker).exists()
    assert outcome.sop_instance_uid == "" or outcome.sop_instance_uid != hostile  # never echoed back
    assert hostile not in AuditEvent.objects.get().subject_id


def test_a_ct_image_is_refused_as_sop_class_not_supported(stored_files: Callable[[], set[Path]]) -> None:
    before = stored_files()
    outcome = receive(image_bytes(study_uid=generate_uid(), sop_class=CT))
    _assert_refused_without_trace(outcome, IngestStatus.SOP_CLASS_NOT_SUPPORTED, stored_files, before)


def test_a_data_set_that_is_not_what_its_meta_says_is_refused(stored_files: Callable[[], set[Path]]) -> None:
    ds = image_dataset(study_uid=generate_uid(), sop_class=CT)
    ds.file_meta.MediaStorageSOPClassUID = CR  # sent as a CR, but it is a CT
    before = stored_files()
    outcome = receive(encode(ds, meta_as_given=True))
    _assert_refused_without_trace(outcome, IngestStatus.MISMATCH, stored_files, before)


def test_an_instance_of_another_study_is_refused_when_one_is_expected(stored_files: Callable[[], set[Path]]) -> None:
    before = stored_files()
    outcome = receive(image_bytes(study_uid="1.2.3.4"), expected_study_uid="1.2.3.5")
    _assert_refused_without_trace(outcome, IngestStatus.WRONG_STUDY, stored_files, before)


def test_under_the_free_space_watermark_it_is_out_of_resources(
    settings: Any, stored_files: Callable[[], set[Path]]
) -> None:
    settings.PNEUMO_DICOM_MIN_FREE_MB = 10**12  # an exabyte: never free
    before = stored_files()
    outcome = receive(image_bytes(study_uid=generate_uid()))
    _assert_refused_without_trace(outcome, IngestStatus.OUT_OF_RESOURCES, stored_files, before)


def test_a_later_instance_restarts_the_stability_window() -> None:
    study_uid = generate_uid()
    receive(image_bytes(study_uid=study_uid))
    first = DicomStudy.objects.get().last_received_at
    receive(image_bytes(study_uid=study_uid))
    dicom_study = DicomStudy.objects.get()
    assert dicom_study.last_received_at > first and dicom_study.first_received_at == first
    assert dicom_study.instances.count() == 2


def test_an_instance_already_stored_is_a_success_even_under_the_watermark(settings: Any) -> None:
    data = image_bytes(study_uid=generate_uid())
    receive(data)
    settings.PNEUMO_DICOM_MIN_FREE_MB = 10**12
    assert receive(data).status is IngestStatus.DUPLICATE
