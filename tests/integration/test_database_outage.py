"""The database becomes unreachable under a running web process: 503 + Retry-After, never a 500; then recovery.

A gunicorn process reaches PostgreSQL only through a TCP proxy this test owns (no persistent connections, so each
request opens its own). Stopping the proxy is the outage; starting it again on the same port is the recovery,
without restarting gunicorn.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from knox.models import AuthToken

from diagnosis.models import Study
from tests.factories import AdminFactory, IntegratorFactory, ModelVersionFactory, StudyFactory, png_bytes
from tests.http.servers import Gunicorn
from tests.integration.faults import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    db = settings.DATABASES["default"]
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("the outage is injected in front of PostgreSQL: set DATABASE_URL (make test does)")
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(params=["0", "60"], ids=["new-connection-per-request", "persistent-connections"])
def web(
    request: pytest.FixtureRequest, worker_env: dict[str, str], db_proxy: TcpProxy, tmp_path: Path
) -> Iterator[Gunicorn]:
    db = settings.DATABASES["default"]
    env = dict(worker_env)
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env["DATABASE_URL"] = f"postgres://{db['USER']}{password}@127.0.0.1:{db_proxy.port}/{db['NAME']}"
    # With persistent connections (production's default), the outage breaks a connection in use.
    env["DATABASE_CONN_MAX_AGE"] = request.param
    # runserver refuses to start while the database is unreachable; gunicorn is what production runs anyway.
    server = Gunicorn(tmp_path, timeout=60, env=env).start()
    yield server
    server.stop()


def _session_cookie(user: Any) -> dict[str, str]:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return {"sessionid": session.session_key or ""}


def _requests(web: Gunicorn, token: str, cookies: dict[str, str], study: Study) -> dict[str, Any]:
    """The requests of a working day: API list and upload, worklist, study page, metrics, admin."""
    api = {"Authorization": f"Token {token}"}
    base = web.url
    widths = itertools.count(64)  # a new image per upload: the same file again would be a deduplicated retry
    return {
        "api list": lambda: requests.get(f"{base}/api/v1/studies/", headers=api, timeout=20),
        "api upload": lambda: requests.post(
            f"{base}/api/v1/studies/",
            headers=api,
            files={"file": ("chest.png", png_bytes(width=next(widths)))},
            timeout=20,
        ),
        "worklist": lambda: requests.get(f"{base}/", cookies=cookies, timeout=20, allow_redirects=False),
        "study page": lambda: requests.get(
            f"{base}/studies/{study.id}/", cookies=cookies, timeout=20, allow_redirects=False
        ),
        "metrics": lambda: requests.get(f"{base}/metrics", timeout=20),
        "worklist script": lambda: requests.get(
            f"{base}/worklist/rows", headers={"Accept": "application/json"}, cookies=cookies, timeout=20
        ),
        "admin": lambda: requests.get(f"{base}/admin/", cookies=cookies, timeout=20, allow_redirects=False),
    }


def test_unreachable_database_answers_503_with_retry_after_then_recovers(
    transactional_db: None, roles: None, web: Gunicorn, db_proxy: TcpProxy
) -> None:
    ModelVersionFactory()
    integrator = IntegratorFactory()
    token = AuthToken.objects.create(user=integrator)[1]
    cookies = _session_cookie(AdminFactory())
    study = StudyFactory(uploaded_by=integrator)
    calls = _requests(web, token, cookies, study)
    healthy = {
        "api list": 200,
        "api upload": 202,
        "worklist": 200,
        "study page": 200,
        "metrics": 200,
        "admin": 200,
        "worklist script": 200,
    }
    assert {name: call().status_code for name, call in calls.items()} == healthy

    db_proxy.stop()
    for name, call in calls.items():
        response = call()
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert 1 <= int(response.headers["Retry-After"]) <= 30, name
        if name.startswith("api") or name == "worklist script":
            assert response.headers["Content-Type"] == "application/json", name
            assert "temporarily unavailable" in response.json()["detail"], name
        else:
            assert "temporarily unavailable" in response.text.lower(), name
            # Nothing about the server: no traceback, no exception name, no host or port.
            for leak in ("Traceback", "OperationalError", "psycopg", str(db_proxy.port), "5432"):
                assert leak not in response.text, (name, leak)
    assert requests.get(f"{web.url}/healthz", timeout=20).status_code == 200  # the process itself is alive
    ready = requests.get(f"{web.url}/readyz", timeout=20)
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"

    db_proxy.start()  # the database is back: same web process, no restart
    assert {name: call().status_code for name, call in calls.items()} == healthy
    assert Study.objects.count() == 3  # the factory's study and one upload per healthy round, none while down
