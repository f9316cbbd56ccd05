"""Slowloris: slow clients must not starve gunicorn's sync workers (docker-compose puts nginx in front).

Each slow connection sends a request's headers one byte at a time. Straight at gunicorn, every sync worker
waits on one of them and /healthz gets no answer (the "before"). Through nginx with deploy/nginx.conf, nginx
holds the slow connections itself and gunicorn only ever sees complete requests.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.http.servers import Gunicorn, Nginx

# /healthz touches no database: the servers need none, and one pair serves the whole module.
pytestmark = pytest.mark.integration

WORKERS = 2
SLOW_CONNECTIONS = 4  # more than the workers
PROBE_TIMEOUT_S = 4.0  # generous for a JSON answer on an idle machine; the slow clients hold out longer
REQUEST_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: " + b"a" * 200


class Slowloris:
    """Connections that trickle one header byte every 0.5 s and never finish, until stopped."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.stop_event = threading.Event()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []

    def _trickle(self, sock: socket.socket) -> None:
        for byte in REQUEST_HEAD:
            if self.stop_event.wait(0.5):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return  # the server gave up on us: fine

    def __enter__(self) -> Slowloris:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.sockets.append(sock)
            thread = threading.Thread(target=self._trickle, args=(sock,), daemon=True)
            thread.start()
            self.threads.append(thread)
        self.stop_event.wait(1.0)  # let every connection be accepted and start trickling
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def healthz(url: str) -> int:
    return requests.get(f"{url}/healthz", timeout=PROBE_TIMEOUT_S).status_code


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn"), workers=WORKERS, timeout=30).start()
    assert healthz(server.url) == 200
    yield server
    server.stop()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, gunicorn: Gunicorn) -> Iterator[Nginx]:
    if Nginx.binary() is None:
        pytest.fail("nginx is not installed: `make test` installs Debian's nginx (make nginx)")
    proxy = Nginx(
        tmp_path_factory.mktemp("nginx"), upstream_port=gunicorn.port, client_max_body_size=51 * 1024 * 1024
    ).start()
    assert healthz(proxy.url) == 200
    yield proxy
    proxy.stop()


def test_without_nginx_slow_clients_starve_gunicorn(gunicorn: Gunicorn) -> None:
    with Slowloris(gunicorn.port, SLOW_CONNECTIONS), pytest.raises(requests.exceptions.Timeout):
        healthz(gunicorn.url)
    # Once the slow clients are gone the workers are free again (the next tests share this server).
    assert healthz(gunicorn.url) == 200


def test_through_nginx_healthz_keeps_answering_under_slow_clients(nginx: Nginx) -> None:
    with Slowloris(nginx.port, SLOW_CONNECTIONS):
        assert [healthz(nginx.url) for _ in range(5)] == [200] * 5


def test_nginx_answers_its_own_refusals_as_json(nginx: Nginx) -> None:
    too_long = requests.get(f"{nginx.url}/api/v1/studies/{'a' * 9000}/", timeout=10)
    assert too_long.status_code == 414
    assert too_long.json() == {"detail": "Request URI too long."}
    metrics = requests.get(f"{nginx.url}/metrics", timeout=10)
    assert metrics.status_code == 404


def test_gunicorn_alone_answers_a_long_request_line_with_html(gunicorn: Gunicorn) -> None:
    # Why nginx answers 414 itself: gunicorn refuses a request line over its limit before Django runs, as HTML.
    # docker-compose raises gunicorn's limit to 8190 so that nginx's 8 KB buffers always refuse first.
    response = requests.get(f"{gunicorn.url}/api/v1/studies/{'a' * 5000}/", timeout=10)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "text/html"
