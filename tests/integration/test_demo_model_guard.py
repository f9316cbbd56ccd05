"""Demo model (issue 8): a worker refuses to start while an untrained demo model is serving, unless allowed.

The model activated by ``active_model`` is a real ``create_demo_artifact`` model, the one ``create_demo_model``
registers. Each test starts a real ``celery worker`` subprocess against the test database and its own Redis db.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diagnosis.tasks.worker import EXIT_DEMO_MODEL_REFUSED
from tests.integration.conftest import WorkerProcess, wait_for

pytestmark = pytest.mark.integration


def _worker(worker_env: dict[str, str], tmp_path: Path, *, allow: str, queues: str = "inference") -> WorkerProcess:
    env = {**worker_env, "PNEUMO_ALLOW_DEMO_MODEL": allow}
    return WorkerProcess(env, tmp_path / "worker.log", f"demo-guard-{os.getpid()}@localhost", queues=queues)


def test_a_worker_refuses_to_start_while_a_demo_model_serves_and_it_is_not_allowed(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, active_model: object
) -> None:
    worker = _worker(worker_env, tmp_path, allow="0")
    worker.start()
    try:
        assert worker.process is not None
        returncode = worker.process.wait(timeout=120)
    finally:
        worker.stop()
    log = worker.log_tail(200)
    assert returncode == EXIT_DEMO_MODEL_REFUSED, log
    assert "Refusing to start: model version(s) integration-demo are untrained demo models" in log
    assert " ready." not in log


@pytest.mark.parametrize(
    ("allow", "queues"),
    [("1", "inference"), ("0", "training")],
    ids=["allowed", "training-worker-trains-the-replacement"],
)
def test_a_worker_starts_when_the_demo_model_is_allowed_or_it_does_not_serve_inference(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, active_model: object, allow: str, queues: str
) -> None:
    worker = _worker(worker_env, tmp_path, allow=allow, queues=queues)
    worker.start()
    try:
        wait_for(lambda: " ready." in worker.log_tail(200), timeout=120, on_timeout=worker.log_tail)
        assert worker.process is not None and worker.process.poll() is None
        assert "Refusing to start" not in worker.log_tail(200)
    finally:
        worker.stop()
