"""STOW-RS against a real gunicorn (as docker-compose runs it): dicomweb-client, raw chunked HTTP, and Orthanc's own
DICOMweb client as senders (acceptance test 6 of issue 9)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from knox.models import AuthToken
from pydicom.uid import generate_uid

from diagnosis.models import DicomInstance, DicomStudy
from tests.factories import IntegratorFactory, RadiologistFactory
from tests.http.servers import Gunicorn, Nginx
from tests.pacs.dicom_files import CT, image_bytes, image_dataset, sample_dicom_files
from tests.pacs.orthanc import Orthanc, orthanc_available

pytestmark = [pytest.mark.pacs, pytest.mark.filterwarnings("ignore:Invalid value for VR UI")]

MAX_BYTES = 3 * 1024 * 1024
PASSWORD = "stow-secret-password"
BOUNDARY = "pneumoweb-test-boundary"


@pytest.fixture(scope="module")
def gunicorn(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("gunicorn shares the test database: set DATABASE_URL to PostgreSQL")
    server = Gunicorn(
        tmp_path_factory.mktemp("stow"),
        workers=2,
        env={
            "PNEUMO_STOW_MAX_BYTES": str(MAX_BYTES),
            "PNEUMO_STORAGE_DIR": str(settings.STORAGES["default"]["OPTIONS"]["location"]),
            "PNEUMO_AXES_ENABLED": "0",
        },
    ).start()
    yield server
    server.stop()


@pytest.fixture
def integrator_account(transactional_db: None) -> Any:
    user = IntegratorFactory(username="pacs-router")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def token(integrator_account: Any) -> str:
    _, key = AuthToken.objects.create(user=integrator_account)
    return str(key)


def client(gunicorn: Gunicorn, *, token: str | None = None, basic: tuple[str, str] | None = None) -> DICOMwebClient:
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Token {token}"
    if basic:
        session.auth = basic
    return DICOMwebClient(url=f"{gunicorn.url}/dicomweb", session=session, chunk_size=10 * MAX_BYTES)


def multipart(*parts: bytes, part_type: str = "application/dicom") -> bytes:
    body = b""
    for part in parts:
        body += f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def post(gunicorn: Gunicorn, body: bytes, *, token: str | None, content_type: str | None = None, path: str = "") -> Any:
    headers = {"Content-Type": content_type or f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}
    if token:
        headers["Authorization"] = f"Token {token}"
    return requests.post(f"{gunicorn.url}/dicomweb/studies{path}", data=body, headers=headers, timeout=30)


def sequences(document: dict[str, Any]) -> tuple[list[str], list[int]]:
    """(stored SOP Instance UIDs, failure reasons) of a STOW-RS response."""
    stored = [item["00081155"]["Value"][0] for item in document["00081199"].get("Value", [])]
    reasons = [item["00081197"]["Value"][0] for item in document["00081198"].get("Value", [])]
    return stored, reasons


def test_all_stored_is_200_with_the_referenced_sop_sequence(gunicorn: Gunicorn, token: str) -> None:
    study_uid = generate_uid()
    datasets = [image_dataset(study_uid=study_uid, seed=i) for i in range(2)]

    response = client(gunicorn, token=token).store_instances(datasets)

    referenced = {item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence}
    assert referenced == {ds.SOPInstanceUID for ds in datasets}
    assert not response.get("FailedSOPSequence")
    stored = DicomInstance.objects.filter(dicom_study__study_instance_uid=study_uid)
    assert stored.count() == 2
    assert set(stored.values_list("received_via", flat=True)) == {DicomStudy.Via.STOW_RS}
    assert {i.received_by.username for i in stored.select_related("received_by")} == {"pacs-router"}


def test_http_basic_is_accepted_and_a_resend_is_still_200(gunicorn: Gunicorn, integrator_account: Any) -> None:
    datasets = [image_dataset(study_uid=generate_uid())]
    dicomweb = client(gunicorn, basic=("pacs-router", PASSWORD))
    dicomweb.store_instances(datasets)
    again = dicomweb.store_instances(datasets)  # a duplicate is a success: the image is stored
    assert len(again.ReferencedSOPSequence) == 1
    assert DicomInstance.objects.count() == 1


def test_a_mix_is_202_and_every_instance_is_listed(gunicorn: Gunicorn, token: str) -> None:
    good = image_bytes(study_uid=generate_uid())
    ct = image_bytes(study_uid=generate_uid(), sop_class=CT)
    response = post(gunicorn, multipart(good, b"garbage", ct), token=token)
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/dicom+json"
    stored, reasons = sequences(response.json())
    assert len(stored) == 1 and sorted(reasons) == [0x0122, 0xC000]
    assert DicomInstance.objects.count() == 1


def test_all_failed_is_409_with_failure_reasons(gunicorn: Gunicorn, token: str, stored_files: Any) -> None:
    before = stored_files()
    hostile = image_bytes(study_uid="../../tmp/pneumoweb-stow", sop_uid="/tmp/pneumoweb-stow")
    response = post(gunicorn, multipart(b"", hostile), token=token)
    assert response.status_code == 409
    stored, reasons = sequences(response.json())
    assert stored == [] and reasons == [0xC000, 0xC000]
    assert "pneumoweb-stow" not in response.text  # hostile values are never echoed
    assert stored_files() == before and DicomInstance.objects.count() == 0
    assert not Path("/tmp/pneumoweb-stow").exists()


def test_instances_of_another_study_fail_on_the_study_url(gunicorn: Gunicorn, token: str) -> None:
    study_uid = generate_uid()
    ours, theirs = image_bytes(study_uid=study_uid), image_bytes(study_uid=generate_uid())
    response = post(gunicorn, multipart(ours, theirs), token=token, path=f"/{study_uid}")
    assert response.status_code == 202
    assert sequences(response.json())[1] == [0xA900]
    assert DicomInstance.objects.get().dicom_study.study_instance_uid == study_uid


@pytest.mark.parametrize(
    "content_type",
    ["application/dicom", "application/json", f"multipart/related; type=application/dicom+xml; boundary={BOUNDARY}"],
)
def test_a_wrong_content_type_is_415(gunicorn: Gunicorn, token: str, content_type: str) -> None:
    response = post(gunicorn, multipart(image_bytes(study_uid=generate_uid())), token=token, content_type=content_type)
    assert response.status_code == 415
    assert DicomInstance.objects.count() == 0


def test_over_the_size_limit_is_413(gunicorn: Gunicorn, token: str) -> None:
    response = post(gunicorn, multipart(b"\0" * (MAX_BYTES + 1)), token=token)
    assert response.status_code == 413
    assert DicomInstance.objects.count() == 0


def test_anonymous_is_401_and_a_radiologist_is_403(gunicorn: Gunicorn, transactional_db: None) -> None:
    body = multipart(image_bytes(study_uid=generate_uid()))
    anonymous = post(gunicorn, body, token=None)
    assert anonymous.status_code == 401 and "Basic" in anonymous.headers["WWW-Authenticate"]
    wrong = requests.post(
        f"{gunicorn.url}/dicomweb/studies",
        data=body,
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'},
        auth=("nobody", "wrong-password"),
        timeout=30,
    )
    assert wrong.status_code == 401
    radiologist = RadiologistFactory(username="rita")
    _, key = AuthToken.objects.create(user=radiologist)
    assert post(gunicorn, body, token=str(key)).status_code == 403
    assert DicomInstance.objects.count() == 0


def _post_chunked(port: int, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", "/dicomweb/studies")
    connection.putheader("Content-Type", f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for offset in range(0, len(body), 7000):  # chunks that cut through part headers and boundaries
        chunk = body[offset : offset + 7000]
        connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    document = json.loads(response.read())
    connection.close()
    return response.status, document


def test_a_chunked_request_is_read_and_stored(gunicorn: Gunicorn, token: str) -> None:
    study_uid = generate_uid()
    body = multipart(*(image_bytes(study_uid=study_uid, seed=i) for i in range(3)))
    status, document = _post_chunked(gunicorn.port, body, token)
    assert status == 200, document
    assert len(sequences(document)[0]) == 3
    assert DicomInstance.objects.filter(dicom_study__study_instance_uid=study_uid).count() == 3


@pytest.mark.skipif(Nginx.binary() is None, reason="nginx is not installed: make test installs it")
def test_a_chunked_request_through_nginx_as_deployed_is_stored(gunicorn: Gunicorn, token: str, tmp_path: Path) -> None:
    # deploy/nginx.conf reads the chunked body whole and passes it on with a Content-Length, under its own
    # /dicomweb/ body limit (larger than an upload's).
    proxy = Nginx(tmp_path, upstream_port=gunicorn.port, client_max_body_size=1024).start()
    try:
        study_uid = generate_uid()
        body = multipart(*(image_bytes(study_uid=study_uid, seed=10 + i) for i in range(2)))
        assert len(body) > 1024  # over the limit of every other path, under the /dicomweb/ one
        status, document = _post_chunked(proxy.port, body, token)
    finally:
        proxy.stop()
    assert status == 200, document
    assert DicomInstance.objects.filter(dicom_study__study_instance_uid=study_uid).count() == 2


def test_a_chunked_request_over_the_limit_is_413(gunicorn: Gunicorn, token: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=30)
    connection.putrequest("POST", "/dicomweb/studies")
    connection.putheader("Content-Type", f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"\0" * (1024 * 1024)
    try:
        for _ in range(MAX_BYTES // len(chunk) + 2):
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before reading it all
    assert connection.getresponse().status == 413
    connection.close()


# --- Orthanc's own DICOMweb client as the sender --------------------------------------------------------------


@pytest.mark.skipif(not orthanc_available(), reason="Orthanc with its DICOMweb plugin is not installed")
def test_orthanc_stows_a_study_to_pneumoweb_chunked_or_not(
    gunicorn: Gunicorn, integrator_account: Any, tmp_path: Path, stored_files: Callable[[], set[Path]]
) -> None:
    server = {"Url": f"{gunicorn.url}/dicomweb/", "Username": "pacs-router", "Password": PASSWORD}
    orthanc = Orthanc(
        tmp_path / "orthanc",
        dicomweb_servers={
            "pneumoweb": {**server, "ChunkedTransfers": False},
            "pneumoweb-chunked": {**server, "ChunkedTransfers": True},
        },
    ).start()
    try:
        sent: dict[str, set[str]] = {}
        for name in ("pneumoweb", "pneumoweb-chunked"):
            study_uid = generate_uid()
            files = [image_bytes(study_uid=study_uid, seed=i) for i in range(2)]
            if name == "pneumoweb":
                files += [p.read_bytes() for p in sample_dicom_files()[:1]]  # and a real JPEG-baseline X-ray
            uploaded = [orthanc.upload(data) for data in files]
            studies = {item["ParentStudy"] for item in uploaded}
            response = orthanc.api.post(
                f"{orthanc.url}/dicom-web/servers/{name}/stow", json={"Resources": sorted(studies)}, timeout=60
            )
            assert response.ok, response.text + orthanc.log_text()[-3000:]
            sent[name] = {str(pydicom.dcmread(_io(data), stop_before_pixels=True).SOPInstanceUID) for data in files}
    finally:
        orthanc.stop()
    for name, sop_uids in sent.items():
        received = set(
            DicomInstance.objects.filter(sop_instance_uid__in=sop_uids).values_list("sop_instance_uid", flat=True)
        )
        assert received == sop_uids, name
    assert set(DicomInstance.objects.values_list("received_via", flat=True)) == {DicomStudy.Via.STOW_RS}


def _io(data: bytes) -> Any:
    from io import BytesIO

    return BytesIO(data)
