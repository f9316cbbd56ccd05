"""The PACS round trip of `make bench` (issue 9): a real Orthanc sends single-image studies to the DICOM listener by
C-STORE; the clock runs from the moment Orthanc's store call returns (the last instance is received) until the AI SR
and the Grad-CAM Secondary Capture are back in Orthanc under the source's Study Instance UID.

Studies are sent one at a time, so each figure is a latency, not a queueing delay. It is printed as the stability
window (``PNEUMO_DICOM_STABILITY_SECONDS``, a wait by design) plus the seconds PneumoWeb added.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT_MODALITIES = {"SR", "OT"}  # our SR, and our Secondary Capture (Modality OT)


def source_studies(count: int) -> list[bytes]:
    """``count`` single-image studies made from the RSNA/SIIM DICOMs (new UIDs each; the pixels are not touched)."""
    import pydicom
    from pydicom.uid import generate_uid

    root = os.environ.get("PNEUMO_SAMPLE_DATA")
    files = sorted((Path(root) / "dicom").rglob("*.dcm")) if root else []
    if not files:
        raise SystemExit("the PACS bench needs the RSNA/SIIM DICOMs under $PNEUMO_SAMPLE_DATA/dicom")
    studies = []
    for index in range(count):
        dataset = pydicom.dcmread(files[index % len(files)])
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.AccessionNumber = f"BENCH{index:04d}"
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        studies.append(buffer.getvalue())
    return studies


def run_pacs(
    *,
    env: dict[str, str],
    work: Path,
    manage: Callable[..., str],
    count: int,
    percentile: Callable[[list[float], float], float],
) -> dict[str, float]:
    """Orthanc → listener → worker → SR + SC back in Orthanc, ``count`` times; seconds after the last instance."""
    sys.path.insert(0, str(ROOT))
    import pydicom

    from tests.integration.faults import free_port
    from tests.pacs.orthanc import Orthanc

    listener_port = free_port()
    orthanc = Orthanc(work / "orthanc", modalities={"pneumoweb": ["PNEUMOWEB", "127.0.0.1", listener_port]})
    orthanc.start()
    node = f"bench-orthanc-{int(time.time())}"
    manage(
        env,
        "dicom_node",
        "add",
        node,
        "--ae-title",
        orthanc.ae_title,
        "--host",
        "127.0.0.1",
        "--port",
        str(orthanc.dicom_port),
        "--sends",
        "--receives-results",
    )
    listener = subprocess.Popen(
        [sys.executable, "manage.py", "dicom_listener", "--port", str(listener_port), "--ae-title", "PNEUMOWEB"],
        cwd=ROOT,
        env=env,
        stdout=(work / "listener.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    window = float(env.get("PNEUMO_DICOM_STABILITY_SECONDS", "5"))
    latencies: list[float] = []
    failed = 0
    try:
        time.sleep(3)  # the listener's Django start-up
        for data in source_studies(count):
            uid = str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).StudyInstanceUID)
            orthanc_id = orthanc.upload(data)["ParentStudy"]
            response = orthanc.api.post(
                f"{orthanc.url}/modalities/pneumoweb/store", json={"Resources": [orthanc_id]}, timeout=60
            )
            response.raise_for_status()
            received = time.monotonic()
            deadline = received + 180
            while time.monotonic() < deadline:
                found = {i["MainDicomTags"].get("Modality") for i in orthanc.find_series(uid)}
                if found >= RESULT_MODALITIES:
                    latencies.append(time.monotonic() - received)
                    break
                time.sleep(0.1)
            else:
                failed += 1
                print(f"  no SR + SC in Orthanc within 180 s for study {uid}; see {work}", flush=True)
    finally:
        os.killpg(listener.pid, signal.SIGTERM)
        listener.wait(timeout=30)
        orthanc.stop()
        manage(env, "dicom_node", "remove", node)
    if not latencies:
        raise SystemExit(f"no PACS round trip completed; logs in {work}")
    return {
        "n": len(latencies),
        "failed": failed,
        "window_s": window,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
    }
