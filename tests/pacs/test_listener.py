"""The DICOM listener against real peers on loopback: dcmtk's echoscu/storescu and pynetdicom as the SCU.

Acceptance tests 1-4 of issue 9: C-ECHO and the AE title checks, storescu of 20 instances from several studies
(screened by a real worker after the stability window, then sent again to no effect), the compressed transfer
syntaxes, and the hostile cases, each followed by a C-ECHO that shows the listener is still alive.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    generate_uid,
)

from diagnosis.models import DicomInstance, DicomNode, DicomStudy, Prediction, Study
from tests.integration.conftest import WorkerProcess, wait_for
from tests.pacs.dicom_files import (
    CR,
    CT,
    DX_PRESENTATION,
    DX_PROCESSING,
    SECONDARY_CAPTURE,
    compressed_bytes,
    dataset_bytes,
    image_bytes,
    image_dataset,
    sample_dicom_files,
)
from tests.pacs.listener import Listener, send_raw

pytestmark = [
    pytest.mark.pacs,
    pytest.mark.filterwarnings("ignore:Invalid value for VR UI"),
    pytest.mark.skipif(shutil.which("echoscu") is None, reason="dcmtk is not installed (make pacs-peers)"),
]

SENDER = "STORESCU"
MAX_ASSOCIATIONS = 3
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


@pytest.fixture(scope="module")
def listener(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("the listener subprocess shares the test database: set DATABASE_URL to PostgreSQL")
    server = Listener(
        tmp_path_factory.mktemp("listener"), env={"PNEUMO_DICOM_MAX_ASSOCIATIONS": str(MAX_ASSOCIATIONS)}
    ).start()
    yield server
    server.stop()


@pytest.fixture
def sender(transactional_db: None) -> DicomNode:
    return DicomNode.objects.create(name="modality", ae_title=SENDER, host="127.0.0.1", port=104)


def assert_alive(listener: Listener) -> None:
    assert listener.alive(), listener.log_text()
    echo = listener.echoscu(calling=SENDER)
    assert echo.returncode == 0, echo.stdout + echo.stderr + listener.log_text()[-3000:]


# --- 1. C-ECHO and the AE titles -----------------------------------------------------------------------------


def test_echoscu_from_an_allowed_node_succeeds(listener: Listener, sender: DicomNode) -> None:
    echo = listener.echoscu(calling=SENDER)
    assert echo.returncode == 0, echo.stdout + echo.stderr


def test_a_wrong_called_ae_title_is_rejected(listener: Listener, sender: DicomNode) -> None:
    echo = listener.echoscu(calling=SENDER, called="NOTPNEUMO")
    assert echo.returncode != 0
    assert "Called AE Title Not Recognized" in echo.stdout + echo.stderr


def test_an_unlisted_calling_ae_title_is_rejected(listener: Listener, sender: DicomNode) -> None:
    echo = listener.echoscu(calling="STRANGER")
    assert echo.returncode != 0
    assert "Calling AE Title Not Recognized" in echo.stdout + echo.stderr


def test_the_allow_list_is_read_for_every_association(listener: Listener, sender: DicomNode) -> None:
    assert listener.echoscu(calling=SENDER).returncode == 0
    DicomNode.objects.filter(id=sender.id).update(enabled=False)
    assert listener.echoscu(calling=SENDER).returncode != 0
    DicomNode.objects.filter(id=sender.id).update(enabled=True, sends_studies=False)  # receives results only
    assert listener.echoscu(calling=SENDER).returncode != 0


# --- 4. Hostile input: failure statuses, no file written, the listener stays up -----------------------------


@pytest.fixture
def dx_association(listener: Listener, sender: DicomNode) -> Iterator[Any]:
    assoc = listener.associate([(DX_PRESENTATION, UNCOMPRESSED), (CT, UNCOMPRESSED)], calling=SENDER)
    assert assoc.is_established
    yield assoc
    if assoc.is_established:
        assoc.release()


@pytest.mark.parametrize(
    "payload",
    [pytest.param(b"", id="0-bytes"), pytest.param(os.urandom(4096), id="garbage")],
)
def test_garbage_gets_cannot_understand(
    listener: Listener, dx_association: Any, payload: bytes, stored_files: Callable[[], set[Path]]
) -> None:
    before = stored_files()
    status = send_raw(dx_association, sop_class=DX_PRESENTATION, sop_instance=generate_uid(), payload=payload)
    assert 0xC000 <= status <= 0xCFFF
    assert stored_files() == before and DicomInstance.objects.count() == 0
    assert_alive(listener)


@pytest.mark.parametrize("field", ["sop_uid", "study_uid"])
@pytest.mark.parametrize("template", ["../../tmp/{}", "/tmp/{}"])
def test_path_like_uids_get_a_failure_and_write_nothing(
    listener: Listener, dx_association: Any, field: str, template: str, stored_files: Callable[[], set[Path]]
) -> None:
    marker = f"pneumoweb-pacs-{uuid.uuid4().hex}"
    hostile = template.format(marker)
    ds = image_dataset(**{"study_uid": generate_uid(), field: hostile})
    before = stored_files()

    status = dx_association.send_c_store(ds)

    assert status.Status in (0xC000, 0xA900), hex(status.Status)
    assert stored_files() == before and DicomInstance.objects.count() == 0
    assert not Path("/tmp", marker).exists()
    assert not any(marker in str(path) for path in Path(listener.workdir).rglob("*"))
    assert_alive(listener)


def test_a_path_like_affected_sop_instance_uid_gets_cannot_understand(
    listener: Listener, dx_association: Any, stored_files: Callable[[], set[Path]]
) -> None:
    marker = f"pneumoweb-pacs-{uuid.uuid4().hex}"
    ds = image_dataset(study_uid=generate_uid())
    before = stored_files()
    status = send_raw(
        dx_association, sop_class=DX_PRESENTATION, sop_instance=f"../../tmp/{marker}", payload=dataset_bytes(ds)
    )
    assert 0xC000 <= status <= 0xCFFF, hex(status)
    assert stored_files() == before and not Path("/tmp", marker).exists()
    assert_alive(listener)


def test_a_ct_is_refused_at_association_and_as_a_mismatch(listener: Listener, dx_association: Any) -> None:
    assert CT in {cx.abstract_syntax for cx in dx_association.rejected_contexts}
    ct = image_dataset(study_uid=generate_uid(), sop_class=CT)
    with pytest.raises(ValueError, match="presentation context"):
        dx_association.send_c_store(ct)
    # A CT data set sent as a DX image (the C-STORE request says DX): the listener reads what it is and refuses it.
    status = send_raw(
        dx_association, sop_class=DX_PRESENTATION, sop_instance=ct.SOPInstanceUID, payload=dataset_bytes(ct)
    )
    assert status == 0xA900, hex(status)
    assert DicomInstance.objects.count() == 0 and Study.objects.count() == 0
    assert_alive(listener)


def _hold_maximum(listener: Listener) -> list[Any]:
    """MAX_ASSOCIATIONS established associations. The threads of earlier tests' associations may take a moment to
    end (pynetdicom counts them until they do), so a refused attempt is released and tried again."""
    held: list[Any] = []

    def attempt() -> bool:
        for assoc in held:
            if assoc.is_established:
                assoc.release()
        held[:] = [
            listener.associate([(DX_PRESENTATION, UNCOMPRESSED)], calling=SENDER) for _ in range(MAX_ASSOCIATIONS)
        ]
        return all(assoc.is_established for assoc in held)

    wait_for(attempt, timeout=20, interval=0.2)
    return held


def test_the_association_over_the_maximum_is_refused(listener: Listener, sender: DicomNode) -> None:
    held = _hold_maximum(listener)
    try:
        over = listener.associate([(DX_PRESENTATION, UNCOMPRESSED)], calling=SENDER)
        assert over.is_rejected and not over.is_established
        rejection = over.acceptor.primitive
        # rejected-transient, by the service provider (presentation related): local limit exceeded
        assert (rejection.result, rejection.result_source, int(rejection.diagnostic)) == (0x02, 0x03, 0x02)
    finally:
        for assoc in held:
            assoc.release()
    assert_alive(listener)


def test_over_the_disk_watermark_stores_are_out_of_resources_and_sigterm_stops_it(
    django_db_setup: None, tmp_path: Path, sender: DicomNode, stored_files: Callable[[], set[Path]]
) -> None:
    full = Listener(tmp_path / "full", env={"PNEUMO_DICOM_MIN_FREE_MB": str(10**12)}).start()
    try:
        assoc = full.associate([(DX_PRESENTATION, UNCOMPRESSED)], calling=SENDER)
        before = stored_files()
        status = assoc.send_c_store(image_dataset(study_uid=generate_uid()))
        assoc.release()
        assert 0xA700 <= status.Status <= 0xA7FF, hex(status.Status)
        assert stored_files() == before and DicomInstance.objects.count() == 0
        assert full.echoscu(calling=SENDER).returncode == 0
    finally:
        returncode = full.stop()
    assert returncode == 0, full.log_text()
    assert "DICOM listener stopped" in full.log_text()


# --- 2 and 3. 20 instances from several studies, then the compressed syntaxes: all screened --------------------


def _twenty_files(folder: Path) -> tuple[list[Path], set[str]]:
    """Up to 5 shared RSNA/SIIM files (JPEG baseline, one study each), the rest synthetic, in 3 studies."""
    files = [p for p in sample_dicom_files() if "Fake" not in p.name][:5]
    studies = {str(image_dataset_study(p)) for p in files}
    synthetic_studies = [generate_uid() for _ in range(3)]
    classes = [CR, DX_PRESENTATION, DX_PROCESSING, SECONDARY_CAPTURE]
    for index in range(20 - len(files)):
        path = folder / f"synthetic-{index}.dcm"
        study_uid = synthetic_studies[index % 3]
        path.write_bytes(image_bytes(study_uid=study_uid, sop_class=classes[index % 4], seed=index))
        files.append(path)
        studies.add(study_uid)
    return files, studies


def image_dataset_study(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


@pytest.mark.integration
def test_storescu_of_20_instances_is_screened_once_and_sending_again_changes_nothing(
    listener: Listener,
    sender: DicomNode,
    active_model: Any,
    worker_env: dict[str, str],
    live_broker: None,
    tmp_path: Path,
) -> None:
    files, study_uids = _twenty_files(tmp_path)
    assert len(study_uids) >= 2
    worker = WorkerProcess(
        worker_env, tmp_path / "worker.log", f"pacs-{os.getpid()}@localhost", queues="inference,pacs"
    )
    worker.start()
    try:
        run = listener.storescu(files, calling=SENDER, extra=("-xy",))
        assert run.successes == 20, run.output[-3000:]

        # Acceptance 3: JPEG 2000 lossless and JPEG-LS lossless by pynetdicom (one context per syntax).
        compressed_study = generate_uid()
        assoc = listener.associate(
            [(DX_PRESENTATION, [JPEG2000Lossless]), (CR, [JPEGLSLossless]), (SECONDARY_CAPTURE, [JPEGBaseline8Bit])],
            calling=SENDER,
        )
        import pydicom

        j2k = pydicom.dcmread(_bytes_io(compressed_bytes(JPEG2000Lossless, study_uid=compressed_study, seed=1)))
        jls = pydicom.dcmread(
            _bytes_io(compressed_bytes(JPEGLSLossless, study_uid=compressed_study, sop_class=CR, seed=2))
        )
        assert assoc.send_c_store(j2k).Status == 0x0000
        assert assoc.send_c_store(jls).Status == 0x0000
        assoc.release()
        expected_instances = 22

        def all_screened() -> bool:
            done = Study.objects.filter(status__in=[Study.Status.COMPLETED, Study.Status.FAILED]).count()
            return done == expected_instances

        wait_for(all_screened, timeout=240, interval=0.5, on_timeout=lambda: worker.log_tail() + listener.log_text())
    finally:
        worker.stop()

    assert set(DicomStudy.objects.values_list("study_instance_uid", flat=True)) == study_uids | {compressed_study}
    assert DicomInstance.objects.count() == expected_instances
    assert not DicomInstance.objects.filter(study__isnull=True).exists()
    assert Study.objects.count() == expected_instances
    assert Study.objects.filter(status=Study.Status.COMPLETED).count() == expected_instances, list(
        Study.objects.values_list("status", "error")
    )
    for study in Study.objects.all():
        assert Prediction.objects.filter(study=study, is_shadow=False).count() == 1
        assert study.source == Study.Source.DICOM
    syntaxes = set(DicomInstance.objects.values_list("transfer_syntax_uid", flat=True))
    assert {JPEGBaseline8Bit, JPEG2000Lossless, JPEGLSLossless} <= syntaxes

    # The same 20 again: 20 successes, nothing new.
    again = listener.storescu(files, calling=SENDER, extra=("-xy",))
    assert again.successes == 20, again.output[-3000:]
    assert DicomInstance.objects.count() == expected_instances and Study.objects.count() == expected_instances
    assert not DicomInstance.objects.filter(study__isnull=True).exists()


def _bytes_io(data: bytes) -> Any:
    from io import BytesIO

    return BytesIO(data)
