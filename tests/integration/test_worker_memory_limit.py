"""A real worker child under its address-space limit: a decode that outgrows it fails the study, the child lives on.

The limit is the second line of defence behind the header checks (issue 8, point 2). The test measures the child's
own peak address space (VmPeak) with the model loaded and a small study done, then restarts the worker with a limit
just above it, so the numbers hold on any machine: a 16000 x 16000 PNG (a 250 KB file that decodes to 256 MB,
accepted because the test raises the pixel limit) must fail with a reason, and the next study must complete in the
same child.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from diagnosis.models import Study
from mlcore.imaging import MEMORY_REFUSAL
from tests.hostile_files import png_chunk
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIG_SIDE = 16000
# Headroom above the measured peak: enough for a small study's decode, far below the 256 MB the big PNG needs.
HEADROOM_MB = 120


def _zero_png(side: int) -> bytes:
    compressor = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + one row of black pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def _small_png(seed: int = 0) -> bytes:
    # A different seed makes a different file: the same file sent again would be a deduplicated retry.
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (256, 256), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _pool_child(worker: WorkerProcess) -> int:
    assert worker.process is not None
    children = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _status_kb(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def _address_space_limit(pid: int) -> int:
    line = next(line for line in Path(f"/proc/{pid}/limits").read_text().splitlines() if "address space" in line)
    soft = line.split()[3]  # "Max address space <soft> <hard> bytes"
    return -1 if soft == "unlimited" else int(soft)


def _upload(api: APIClient, content: bytes) -> str:
    with override_settings(PNEUMO_MAX_IMAGE_PIXELS=BIG_SIDE * BIG_SIDE + 1):
        response = api.post("/api/v1/studies/", {"file": io.BytesIO(content)}, format="multipart")
    assert response.status_code == 202, response.content
    return str(response.json()["id"])


def _finished(study_id: str, worker: WorkerProcess) -> Study:
    wait_for(
        lambda: Study.objects.get(id=study_id).status in ("completed", "failed"),
        timeout=240,
        on_timeout=worker.log_tail,
    )
    return Study.objects.get(id=study_id)


def test_a_decode_past_the_memory_limit_fails_its_study_and_the_next_one_completes(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, active_model: Any
) -> None:
    integrator = User.objects.create_user("pacs-memory")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=integrator)[1]}")
    env = {**worker_env, "PNEUMO_MAX_IMAGE_PIXELS": str(BIG_SIDE * BIG_SIDE + 1)}

    # 1. The child's peak address space with the model loaded and one small study screened, limit off.
    measuring = WorkerProcess({**env, "PNEUMO_WORKER_MEMORY_LIMIT_MB": "0"}, tmp_path / "measure.log", "mem-measure@x")
    measuring.start()
    try:
        assert _finished(_upload(api, _small_png()), measuring).status == "completed"
        peak_kb = _status_kb(_pool_child(measuring), "VmPeak")
        print(f"worker child VmPeak with the model loaded: {peak_kb // 1024} MB")  # noqa: T201 - the documented figure
    finally:
        measuring.stop()

    # 2. The same worker with a limit just above that peak.
    limit_mb = peak_kb // 1024 + HEADROOM_MB
    limited = WorkerProcess({**env, "PNEUMO_WORKER_MEMORY_LIMIT_MB": str(limit_mb)}, tmp_path / "limited.log", "mem@x")
    limited.start()
    try:
        bomb = _finished(_upload(api, _zero_png(BIG_SIDE)), limited)
        child = _pool_child(limited)
        after = _finished(_upload(api, _small_png(seed=1)), limited)

        assert (bomb.status, bomb.error, bomb.attempts) == ("failed", MEMORY_REFUSAL, 1), limited.log_tail()
        assert after.status == "completed"
        assert _pool_child(limited) == child  # the same child screened the next study: it lived on
        assert _address_space_limit(child) == limit_mb * 1024 * 1024
    finally:
        limited.stop()


def test_children_of_a_worker_that_trains_get_no_address_space_limit(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path
) -> None:
    # Training a network needs far more address space than screening one image: a limit there would kill runs.
    worker = WorkerProcess(
        {**worker_env, "PNEUMO_WORKER_MEMORY_LIMIT_MB": "3000"},
        tmp_path / "trainer.log",
        "trainer@x",
        "inference,training",
    )
    worker.start()
    try:
        wait_for(
            lambda: "no address-space limit" in worker.log_path.read_text(errors="replace"),
            timeout=120,
            on_timeout=worker.log_tail,
        )
        assert _address_space_limit(_pool_child(worker)) == -1
    finally:
        worker.stop()
