"""Through a real gunicorn (as docker-compose runs it): an anonymous large POST is refused before it is spooled.

Before the fix, a POST of a large multipart body with a well-formed forged ``csrftoken`` cookie to
``/accounts/login/`` or ``/upload/`` made Django spool the file part to the temporary folder (the CSRF check reads
``request.POST``) and only then answer 403. Here the upload temporary folder is one the test owns and watches.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ModelVersionFactory, RadiologistFactory
from tests.http.servers import Gunicorn
from tests.http.test_body_limit import noisy_png

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BODY_BYTES = 30 * 1024 * 1024  # far over FILE_UPLOAD_MAX_MEMORY_SIZE (5 MB): Django would spool it to disk
BOUNDARY = "xxBOUNDARYxx"
CSRF = "f" * 32  # well-formed, so Django reads the body to look for a matching form field


class SpoolWatcher:
    """Polls a folder while requests run and remembers the largest total size of the files it ever held."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.largest = folder, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for entry in list(self.folder.iterdir()):
                try:
                    total += entry.stat().st_size
                except FileNotFoundError:
                    continue
            self.largest = max(self.largest, total)

    def __enter__(self) -> SpoolWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def post_large_multipart(port: int, path: str, extra_headers: str = "") -> tuple[int, bytes]:
    """Send a large multipart POST over a raw socket; read the answer while the body is still being sent."""
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'.encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head) + BODY_BYTES + len(tail)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\nCookie: csrftoken={CSRF}\r\n{extra_headers}Connection: close\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)

    def send_body() -> None:
        try:
            sock.sendall(request + head)
            chunk = b"\0" * (1024 * 1024)
            for _ in range(BODY_BYTES // len(chunk)):
                sock.sendall(chunk)
            sock.sendall(tail)
        except OSError:
            pass  # the server answered and closed without reading the body: what we want

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    sender.join(timeout=60)
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("upload-spool")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, spool_dir: Path, django_db_setup: None) -> Iterator[Gunicorn]:
    # One server for the module; django_db_setup first, so it is pointed at the test database.
    workdir = tmp_path_factory.mktemp("gunicorn")
    gunicorn = Gunicorn(workdir, workers=1, env={"PNEUMO_UPLOAD_TEMP_DIR": str(spool_dir)}).start()
    yield gunicorn
    gunicorn.stop()


@pytest.mark.parametrize("path", ["/accounts/login/", "/upload/", "/api/v1/studies/"])
def test_an_anonymous_large_post_is_refused_before_anything_is_spooled(
    server: Gunicorn, spool_dir: Path, path: str
) -> None:
    with SpoolWatcher(spool_dir) as watcher:
        status, answer = post_large_multipart(server.port, path)
    assert watcher.largest == 0, f"status {status}, spooled {watcher.largest}"
    assert status == 413, answer[:400]
    assert list(spool_dir.iterdir()) == []


def test_authenticated_uploads_still_work_through_gunicorn(
    server: Gunicorn, api_client_for: Callable[[Any], APIClient], integrator: Any
) -> None:
    ModelVersionFactory(version="resnet50-live")
    radiologist = RadiologistFactory(username="live.radiologist")
    client = Client()
    client.force_login(radiologist)
    session = {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF}
    content = noisy_png()
    assert len(content) > 64 * 1024

    dashboard = requests.post(
        f"{server.url}/upload/file",
        files={"file": ("chest.png", content, "image/png")},
        cookies=session,
        headers={"X-CSRFToken": CSRF, "Referer": server.url + "/upload/"},
        timeout=30,
    )
    assert dashboard.status_code == 201, dashboard.text

    token = api_client_for(integrator)._credentials["HTTP_AUTHORIZATION"]
    api = requests.post(
        f"{server.url}/api/v1/studies/",
        files={"file": ("chest.png", content, "image/png")},
        headers={"Authorization": token},
        timeout=30,
    )
    assert api.status_code == 202, api.text
