"""A real Orthanc (Debian's package) as the hospital's PACS, with its own config, ports and storage per test.

Orthanc 1.10 starts from a JSON config in about 4 s. The test gives it PneumoWeb as a DICOM modality (for
``POST /modalities/pneumoweb/store``) and as a DICOMweb server (for ``/dicom-web/servers/pneumoweb/stow``). A system
Orthanc that Debian may have started on 4242/8042 is never touched: every port here is a free one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from tests.integration.faults import free_port

ORTHANC_BINARY = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
ORTHANC_PLUGINS = Path("/usr/share/orthanc/plugins")
ORTHANC_AE_TITLE = "ORTHANCTEST"


def orthanc_available() -> bool:
    return os.path.exists(ORTHANC_BINARY) and (ORTHANC_PLUGINS / "libOrthancDicomWeb.so").exists()


class Orthanc:
    """``Orthanc config.json`` in a subprocess; :attr:`api` is a requests session on its REST API."""

    def __init__(
        self,
        workdir: Path,
        *,
        modalities: dict[str, list[Any]] | None = None,
        dicomweb_servers: dict[str, dict[str, Any]] | None = None,
        ae_title: str = ORTHANC_AE_TITLE,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ae_title = ae_title
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.log = workdir / "orthanc.log"
        self.modalities = modalities or {}
        self.dicomweb_servers = dicomweb_servers or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.api = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self) -> dict[str, Any]:
        return {
            "Name": "PneumoWeb test PACS",
            "StorageDirectory": str(self.workdir / "db"),
            "IndexDirectory": str(self.workdir / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpServerEnabled": True,
            "DicomServerEnabled": True,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomModalities": self.modalities,
            "DicomScuTimeout": 10,
            "Plugins": [str(ORTHANC_PLUGINS)],
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "Servers": self.dicomweb_servers,
            },
            "Gdcm": {"Enable": True},
            "StableAge": 1,
        }

    def start(self, timeout: float = 60.0) -> Orthanc:
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [ORTHANC_BINARY, str(config_path)],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"Orthanc exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if self.api.get(f"{self.url}/system", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Orthanc did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    # --- REST helpers ---------------------------------------------------------------------------------------------

    def upload(self, data: bytes) -> dict[str, Any]:
        response = self.api.post(f"{self.url}/instances", data=data, timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def find_instances(self, study_instance_uid: str) -> list[dict[str, Any]]:
        """Every instance Orthanc holds under the Study Instance UID, with its tags."""
        return self._find("Instance", study_instance_uid)

    def find_series(self, study_instance_uid: str) -> list[dict[str, Any]]:
        """Every series Orthanc holds under the Study Instance UID (``MainDicomTags`` has the Modality)."""
        return self._find("Series", study_instance_uid)

    def _find(self, level: str, study_instance_uid: str) -> list[dict[str, Any]]:
        response = self.api.post(
            f"{self.url}/tools/find",
            json={"Level": level, "Query": {"StudyInstanceUID": study_instance_uid}, "Expand": True},
            timeout=30,
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def instance_file(self, orthanc_id: str) -> bytes:
        response = self.api.get(f"{self.url}/instances/{orthanc_id}/file", timeout=30)
        response.raise_for_status()
        return response.content
