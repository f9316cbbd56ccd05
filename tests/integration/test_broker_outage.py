"""The database is the record, Redis only carries messages: uploads survive a broker outage, lost messages are re-sent.

Each test owns its broker: a ``redis-server`` on a free port that it stops, starts or flushes. This process (the web
side: API and dashboard views through the test clients, and the Redis cache that upload throttling uses) and a real
Celery worker both point at it. The machine's own Redis is never touched.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from diagnosis.models import Prediction, Study
from pneumoweb.celery import app as celery_app
from pneumoweb.settings import base as base_settings
from tests.integration.conftest import WorkerProcess, wait_for
from tests.integration.faults import free_port
from tests.integration.test_workflow import chest_like_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Short in tests so they stay fast; production defaults are in settings (PNEUMO_REQUEUE_QUEUED_SECONDS, 30 s).
REQUEUE_QUEUED_SECONDS = 3
RECONCILE_SECONDS = 1


class RedisServer:
    """A throwaway ``redis-server`` without persistence, like the machine's: stop() loses every message."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: self._pings(client), timeout=20, interval=0.05)

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def flushdb(self) -> None:
        redis.Redis.from_url(self.url).flushdb()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (Debian package redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_on_own_redis(own_redis: RedisServer, live_broker: None) -> Iterator[None]:
    """Point this process's Celery producer and the throttling cache at the test's Redis, as production settings do."""
    previous_url = celery_app.conf.broker_url
    celery_app.conf.broker_url = own_redis.url
    celery_app._after_fork()  # drop pooled connections to the previous broker
    caches = copy.deepcopy(base_settings.CACHES)  # the production cache settings (timeouts included)
    caches["default"]["LOCATION"] = own_redis.url
    with override_settings(CACHES=caches):
        yield
    celery_app.conf.broker_url = previous_url
    celery_app._after_fork()


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], own_redis: RedisServer, tmp_path: Path, active_model: object
) -> Iterator[StartWorker]:
    workers: list[WorkerProcess] = []

    def start(*, beat: bool) -> WorkerProcess:
        env = dict(worker_env)
        env.update(
            {
                "REDIS_URL": own_redis.url,
                "PNEUMO_REQUEUE_QUEUED_SECONDS": str(REQUEUE_QUEUED_SECONDS),
                "PNEUMO_RECONCILE_SECONDS": str(RECONCILE_SECONDS),
            }
        )
        extra = ("-B", "--schedule", str(tmp_path / "beat-schedule")) if beat else ()
        worker = WorkerProcess(env, tmp_path / "worker.log", f"broker-{os.getpid()}@localhost", extra_args=extra)
        worker.start()
        workers.append(worker)
        wait_for(lambda: " ready." in worker.log_path.read_text(errors="replace"), timeout=120)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def _integrator_api() -> APIClient:
    integrator = User.objects.create_user("pacs-router")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=integrator)[1]}")
    return api


def _radiologist_web() -> Client:
    radiologist = User.objects.create_user("dr-cuddy")
    radiologist.groups.add(Group.objects.get(name="radiologist"))
    web = Client()
    web.force_login(radiologist, backend="django.contrib.auth.backends.ModelBackend")
    return web


def _statuses(study_ids: list[str]) -> str:
    counts: dict[str, int] = {}
    for status in Study.objects.filter(id__in=study_ids).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return f"statuses: {counts}"


def _all_finished(study_ids: list[str]) -> bool:
    return Study.objects.filter(id__in=study_ids, status__in=["completed", "failed"]).count() == len(study_ids)


def _wait_until_finished(study_ids: list[str], worker: WorkerProcess, timeout: float) -> None:
    wait_for(
        lambda: _all_finished(study_ids),
        timeout=timeout,
        on_timeout=lambda: f"{_statuses(study_ids)}\n{worker.log_tail(15)}",
    )


def _assert_each_completed_with_one_primary_prediction(study_ids: list[str]) -> None:
    for study in Study.objects.filter(id__in=study_ids):
        assert study.status == "completed", study.error
        assert Prediction.objects.filter(study=study, is_shadow=False).count() == 1


def test_uploads_during_a_redis_outage_are_accepted_once_and_complete_when_redis_is_back(
    own_redis: RedisServer, web_on_own_redis: None, start_worker: StartWorker
) -> None:
    worker = start_worker(beat=True)
    api, web = _integrator_api(), _radiologist_web()
    api_png, dashboard_png = chest_like_png(seed=11), chest_like_png(seed=12)

    own_redis.stop()
    first = api.post("/api/v1/studies/", {"file": io.BytesIO(api_png)}, format="multipart")
    assert first.status_code == 202, first.content
    page = web.post("/upload/", {"file": io.BytesIO(dashboard_png)})
    assert page.status_code == 302, page.content
    dashboard_study = Study.objects.get(source="dashboard")
    assert page["Location"] == f"/studies/{dashboard_study.id}/"

    # The client did not see the answer (say its connection dropped) and sends the same file again.
    retry = api.post("/api/v1/studies/", {"file": io.BytesIO(api_png)}, format="multipart")
    assert retry.status_code == 200, retry.content
    assert retry.json()["id"] == first.json()["id"]
    assert retry.json()["duplicate"] is True
    page_retry = web.post("/upload/", {"file": io.BytesIO(dashboard_png)})
    assert page_retry["Location"] == f"/studies/{dashboard_study.id}/"
    assert Study.objects.filter(source="api").count() == 1
    assert Study.objects.filter(source="dashboard").count() == 1

    own_redis.start()  # empty, as after a crash: nothing was ever sent for these two studies
    study_ids = [first.json()["id"], str(dashboard_study.id)]
    _wait_until_finished(study_ids, worker, timeout=180)
    _assert_each_completed_with_one_primary_prediction(study_ids)


def test_studies_whose_messages_redis_lost_complete_while_the_worker_runs(
    own_redis: RedisServer, web_on_own_redis: None, start_worker: StartWorker
) -> None:
    worker = start_worker(beat=True)
    api = _integrator_api()
    # Freeze the worker so the studies are still waiting in Redis when it loses them.
    assert worker.process is not None
    os.killpg(worker.process.pid, signal.SIGSTOP)
    try:
        study_ids = []
        for seed in range(4):
            response = api.post("/api/v1/studies/", {"file": io.BytesIO(chest_like_png(seed=20 + seed))})
            assert response.status_code == 202, response.content
            study_ids.append(response.json()["id"])
        own_redis.flushdb()
        flushed = time.monotonic()
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)
    _wait_until_finished(study_ids, worker, timeout=120)
    print(f"all {len(study_ids)} studies completed {time.monotonic() - flushed:.1f} s after FLUSHDB")
    _assert_each_completed_with_one_primary_prediction(study_ids)


def test_a_starting_worker_resends_queued_studies_older_than_the_requeue_delay(
    own_redis: RedisServer, web_on_own_redis: None, start_worker: StartWorker
) -> None:
    api = _integrator_api()
    study_ids = []
    for seed in range(3):
        response = api.post("/api/v1/studies/", {"file": io.BytesIO(chest_like_png(seed=30 + seed))})
        assert response.status_code == 202, response.content
        study_ids.append(response.json()["id"])
    own_redis.flushdb()  # Redis restarted while no worker ran: every message is gone
    Study.objects.filter(id__in=study_ids).update(queued_at=timezone.now() - timedelta(minutes=1))

    worker = start_worker(beat=False)  # no beat: only the start-up re-send can help
    _wait_until_finished(study_ids, worker, timeout=120)
    _assert_each_completed_with_one_primary_prediction(study_ids)
