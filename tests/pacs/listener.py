"""The DICOM listener (``manage.py dicom_listener``) in a subprocess on the test database, and DIMSE helpers.

Like :class:`tests.http.servers.Gunicorn`: its own free port, the database pytest-django created, the test's storage
folder (so a worker of the test reads what it wrote) and a short stability window.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

from django.conf import settings
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA

from tests.http.servers import ROOT, stop, subprocess_database_url, wait_for_port
from tests.integration.faults import free_port

LISTENER_AE_TITLE = "PNEUMOWEB"


class Listener:
    """``python manage.py dicom_listener --port P --ae-title PNEUMOWEB``; ``env`` overrides its settings."""

    def __init__(self, workdir: Path, *, env: dict[str, str] | None = None, ae_title: str = LISTENER_AE_TITLE):
        self.workdir, self.ae_title = workdir, ae_title
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = workdir / "listener.log"
        self.env = dict(os.environ)
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "pneumoweb.settings.test",
                "DATABASE_URL": subprocess_database_url(),
                "PNEUMO_CELERY_EAGER": "0",
                "PNEUMO_STORAGE_DIR": str(settings.STORAGES["default"]["OPTIONS"]["location"]),
                "PNEUMO_VAR_DIR": str(workdir / "var"),
                "PNEUMO_DICOM_STABILITY_SECONDS": "2",
                "PNEUMO_DICOM_ACSE_TIMEOUT": "5",
                "PNEUMO_DICOM_DIMSE_TIMEOUT": "10",
                "PNEUMO_DICOM_NETWORK_TIMEOUT": "10",
            }
        )
        if settings.REDIS_URL:
            self.env["REDIS_URL"] = settings.REDIS_URL
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Listener:
        args = [sys.executable, "manage.py", "dicom_listener", "--port", str(self.port), "--ae-title", self.ae_title]
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for_port(self.port, process=self.process, log=self.log)
        return self

    def stop(self) -> int | None:
        if self.process is not None:
            stop(self.process)
            return self.process.returncode
        return None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    # --- dcmtk --------------------------------------------------------------------------------------------------

    def echoscu(self, *, calling: str, called: str | None = None) -> subprocess.CompletedProcess[str]:
        args = ["echoscu", "-aet", calling, "-aec", called or self.ae_title, "127.0.0.1", str(self.port)]
        return subprocess.run(args, capture_output=True, text=True, timeout=30)

    def storescu(self, files: list[Path], *, calling: str, extra: tuple[str, ...] = ()) -> StoreRun:
        args = ["storescu", "-v", "-aet", calling, "-aec", self.ae_title, *extra, "127.0.0.1", str(self.port)]
        done = subprocess.run([*args, *map(str, files)], capture_output=True, text=True, timeout=120)
        return StoreRun(done)

    # --- pynetdicom as the SCU --------------------------------------------------------------------------------

    def associate(self, contexts: list[tuple[str, list[str]]], *, calling: str) -> Association:
        ae = AE(ae_title=calling)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        for sop_class, syntaxes in contexts:
            ae.add_requested_context(sop_class, syntaxes)
        return ae.associate("127.0.0.1", self.port, ae_title=self.ae_title)


class StoreRun:
    """A storescu run: its statuses from ``-v`` output."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.returncode, self.output = done.returncode, done.stdout + done.stderr
        self.successes = len(re.findall(r"Received Store Response \(Success\)", self.output))


def send_raw(assoc: Association, *, sop_class: str, sop_instance: str, payload: bytes) -> int:
    """C-STORE ``payload`` as the data set, whatever it is (garbage, nothing): the status the listener answers.

    ``Association.send_c_store`` only sends datasets it can encode, so this builds the request itself, the same way.
    """
    context = next(cx for cx in assoc.accepted_contexts if cx.abstract_syntax == sop_class)
    request = C_STORE()
    request.MessageID = 1
    request.Priority = 2
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = sop_instance
    request.DataSet = BytesIO(payload)
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        assoc.dimse.send_msg(request, context.context_id)
        if not payload:
            # pynetdicom sends no data fragment for an empty data set; a peer that says "data set follows" and
            # sends one empty last fragment is the 0-byte case.
            empty = P_DATA()
            empty.presentation_data_value_list.append((context.context_id, b"\x02"))
            assoc.dul.send_pdu(empty)
        _, response = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    assert response is not None, "no C-STORE response within the DIMSE timeout"
    return int(response.Status)
