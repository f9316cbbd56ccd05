"""docs/DICOM_CONFORMANCE.md stays true: its Orthanc configuration starts a real Orthanc, and its numbers are ours.

The Orthanc block is taken from the document as written; only ports and folders are changed to run it here. With
the document's Lua routing script loaded, a CR stored into that Orthanc reaches the ``pneumoweb`` modality (a
pynetdicom Storage SCP standing in for the listener, with PneumoWeb's AE title).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.conf import settings
from pydicom.data import get_testdata_file

from tests.integration.faults import free_port
from tests.pacs.orthanc import Orthanc, orthanc_available

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "DICOM_CONFORMANCE.md"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def doc_text() -> str:
    return DOC.read_text()


def documented_orthanc_config() -> dict[str, Any]:
    match = re.search(r"<!-- orthanc-config -->\s*```json\n(.*?)\n```", doc_text(), re.S)
    assert match is not None, "the Orthanc config block (after <!-- orthanc-config -->) is missing"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def documented_lua() -> str:
    match = re.search(r"```lua\n(.*?)\n\s*```", doc_text(), re.S)
    assert match is not None
    return "\n".join(line.removeprefix("  ") for line in match.group(1).splitlines())


def test_the_documented_orthanc_config_carries_what_pneumoweb_needs() -> None:
    config = documented_orthanc_config()
    modality = config["DicomModalities"]["pneumoweb"]
    assert (modality["AET"], modality["Port"], modality["AllowStore"]) == (
        settings.PNEUMO_DICOM_AE_TITLE,
        settings.PNEUMO_DICOM_PORT,
        True,
    )
    server = config["DicomWeb"]["Servers"]["pneumoweb"]
    assert server["ChunkedTransfers"] is False  # Orthanc would otherwise send STOW-RS chunked
    assert server["Url"].endswith("/dicomweb/")  # Orthanc posts to {Url}studies
    assert config["DicomWeb"]["Enable"] is True


def test_the_document_states_the_settings_defaults() -> None:
    text = doc_text()
    for name, shown in [
        ("PNEUMO_DICOM_AE_TITLE", f"`{settings.PNEUMO_DICOM_AE_TITLE}`"),
        ("PNEUMO_DICOM_PORT", f"`{settings.PNEUMO_DICOM_PORT}`"),
        ("PNEUMO_DICOM_MAX_ASSOCIATIONS", f"({settings.PNEUMO_DICOM_MAX_ASSOCIATIONS})"),
        ("PNEUMO_DICOM_ACSE_TIMEOUT", f"({settings.PNEUMO_DICOM_ACSE_TIMEOUT} s)"),
        ("PNEUMO_DICOM_DIMSE_TIMEOUT", f"({settings.PNEUMO_DICOM_DIMSE_TIMEOUT} s)"),
        ("PNEUMO_DICOM_NETWORK_TIMEOUT", f"({settings.PNEUMO_DICOM_NETWORK_TIMEOUT} s)"),
        ("PNEUMO_DICOM_STABILITY_SECONDS", f"({settings.PNEUMO_DICOM_STABILITY_SECONDS} s)"),
        ("PNEUMO_RESULT_SEND_MAX_RETRIES", f"= {settings.PNEUMO_RESULT_SEND_MAX_RETRIES}"),
        ("PNEUMO_STOW_MAX_BYTES", f"({settings.PNEUMO_STOW_MAX_BYTES // (1024 * 1024)} MB)"),
    ]:
        assert re.search(rf"`{name}`[^\n|]*?{re.escape(shown)}", text) or f"`{name}` | {shown}" in text, name


class _DocumentedOrthanc(Orthanc):
    """Orthanc on the document's configuration; only ports, folders and the Lua script's path differ."""

    def __init__(self, workdir: Path, *, pneumoweb_port: int) -> None:
        super().__init__(workdir)
        self.pneumoweb_port = pneumoweb_port
        self.api.auth = ("admin", "change-me")  # the document's RegisteredUsers

    def config(self) -> dict[str, Any]:
        config = documented_orthanc_config()
        lua = self.workdir / "route-to-pneumoweb.lua"
        lua.write_text(documented_lua())
        config.update(
            HttpPort=self.http_port,
            DicomPort=self.dicom_port,
            StorageDirectory=str(self.workdir / "db"),
            IndexDirectory=str(self.workdir / "db"),
            RemoteAccessAllowed=False,
            LuaScripts=[str(lua)],
        )
        config["DicomModalities"]["pneumoweb"].update(Host="127.0.0.1", Port=self.pneumoweb_port)
        return config


class _StorageScp:
    """A pynetdicom Storage SCP with PneumoWeb's AE title: where Orthanc's routing should deliver."""

    def __init__(self, port: int) -> None:
        from pynetdicom import AE, evt

        self.received: list[str] = []
        self.arrived = threading.Event()
        ae = AE(ae_title=settings.PNEUMO_DICOM_AE_TITLE)
        ae.add_supported_context(CR_IMAGE_STORAGE, ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
        ae.add_supported_context("1.2.840.10008.1.1")

        def on_store(event: Any) -> int:
            self.received.append(str(event.dataset.SOPInstanceUID))
            self.arrived.set()
            return 0x0000

        self.server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])

    def stop(self) -> None:
        self.server.shutdown()


@pytest.mark.pacs
@pytest.mark.skipif(not orthanc_available(), reason="Orthanc with its DICOMweb plugin is not installed")
def test_orthanc_starts_on_the_documented_config_and_routes_a_cr_to_pneumoweb(tmp_path: Path) -> None:
    scp = _StorageScp(free_port())
    orthanc = _DocumentedOrthanc(tmp_path / "orthanc", pneumoweb_port=scp.server.server_address[1])
    try:
        orthanc.start()
        modalities = orthanc.api.get(f"{orthanc.url}/modalities", params={"expand": ""}, timeout=10).json()
        assert modalities["pneumoweb"]["AET"] == settings.PNEUMO_DICOM_AE_TITLE
        assert modalities["pneumoweb"]["AllowStore"] is True
        servers = orthanc.api.get(f"{orthanc.url}/dicom-web/servers", timeout=10).json()
        assert "pneumoweb" in servers
        echo = orthanc.api.post(f"{orthanc.url}/modalities/pneumoweb/echo", json={}, timeout=20)
        assert echo.status_code == 200, echo.text

        cr = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        cr.SOPClassUID = CR_IMAGE_STORAGE
        cr.file_meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
        cr.Modality = "CR"
        from io import BytesIO

        buffer = BytesIO()
        cr.save_as(buffer, enforce_file_format=True)
        orthanc.upload(buffer.getvalue())

        assert scp.arrived.wait(timeout=30), orthanc.log_text()[-2000:]
        assert scp.received == [str(cr.SOPInstanceUID)]
    finally:
        orthanc.stop()
        scp.stop()
