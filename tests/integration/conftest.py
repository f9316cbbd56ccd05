"""Integration fixtures: a real Celery worker process against the real PostgreSQL and Redis of the machine.

The test process and the worker share the test database, the storage folder and Redis (db 15 by default). Tests
here use ``transactional_db`` so what the test writes is committed and visible to the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from pneumoweb.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION_IMAGE_SIZE = 64


def _require_services() -> None:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("integration tests need PostgreSQL: set DATABASE_URL (make test does)")
    if not settings.REDIS_URL:
        pytest.skip("integration tests need Redis: set REDIS_URL (make test does)")


@pytest.fixture(scope="session")
def demo_artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model artifact (64 px), built once per session in a subprocess (keeps TF out of here)."""
    out = tmp_path_factory.mktemp("models") / "integration-demo"
    code = (
        "import sys; from mlcore.artifact import create_demo_artifact; "
        f"create_demo_artifact(sys.argv[1], image_size={INTEGRATION_IMAGE_SIZE}, version='integration-demo')"
    )
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=ROOT, timeout=300)
    return out


@pytest.fixture
def roles(transactional_db: None) -> None:
    # transactional_db flushes tables between tests, including rows a data migration created.
    for name in ("radiologist", "integrator"):
        Group.objects.get_or_create(name=name)


@pytest.fixture
def active_model(roles: None, demo_artifact_dir: Path):  # type: ignore[no-untyped-def]
    from diagnosis.services.model_registration import model_version_register
    from diagnosis.services.model_versions import model_version_activate

    version = model_version_register(path=demo_artifact_dir, version="integration-demo")
    return model_version_activate(model_version=version, allow_unvalidated=True)


class WorkerProcess:
    """A real `celery worker` subprocess; ``kill()`` SIGKILLs it and its pool children like a crashed machine."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        node_name: str,
        queues: str = "inference",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.env, self.log_path, self.node_name, self.queues = env, log_path, node_name, queues
        self.extra_args = extra_args  # e.g. ("-B", "--schedule", path) for an embedded beat
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pneumoweb",
                "worker",
                "-Q",
                self.queues,
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "-n",
                self.node_name,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                *self.extra_args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    _require_services()
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "pneumoweb.settings.test",
            "PNEUMO_CELERY_EAGER": "0",
            # The worker must use the test database pytest-django created, not the development one.
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "PNEUMO_STORAGE_DIR": str(settings.STORAGES["default"]["OPTIONS"]["location"]),
            "PNEUMO_VAR_DIR": str(tmp_path / "var"),
            "PNEUMO_MODEL_DIR": str(tmp_path / "worker-models"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return env


@pytest.fixture
def live_broker() -> Iterator[None]:
    """Send tasks to the real Redis broker from this process (unit tests run them eagerly instead)."""
    _require_services()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()  # stale messages of an earlier run must not leak in
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def celery_worker_process(
    worker_env: dict[str, str], live_broker: None, tmp_path: Path, active_model: object
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(worker_env, tmp_path / "worker.log", f"itest-{os.getpid()}@localhost")
    worker.start()
    yield worker
    worker.stop()


def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.25,
    on_timeout: Callable[[], str] = lambda: "",
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout} s. {on_timeout()}")
