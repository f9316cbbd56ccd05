"""Real servers for the HTTP tests: gunicorn as docker-compose runs it, and nginx with the repository's config."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from tests.integration.faults import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def subprocess_database_url() -> str:
    """The database pytest-django created, for a server subprocess to share with the test."""
    db = settings.DATABASES["default"]
    auth = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def wait_for_port(port: int, *, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server not listening on {port} within {timeout} s:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class Gunicorn:
    """``gunicorn pneumoweb.wsgi`` with sync workers, as docker-compose runs it, on the test database."""

    def __init__(self, workdir: Path, *, workers: int = 1, timeout: int = 30, env: dict[str, str] | None = None):
        self.workdir, self.workers, self.timeout = workdir, workers, timeout
        self.port = free_port()
        self.log = workdir / "gunicorn.log"
        self.env = dict(os.environ)
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "pneumoweb.settings.test",
                "DATABASE_URL": subprocess_database_url(),
                "PNEUMO_CELERY_EAGER": "0",
                "PNEUMO_STORAGE_DIR": str(workdir / "storage"),
                "PNEUMO_VAR_DIR": str(workdir / "var"),
            }
        )
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        args = [sys.executable, "-m", "gunicorn", "pneumoweb.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", str(self.workers), "--timeout", str(self.timeout), "--worker-class", "sync"]
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process, log=self.log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


class Nginx:
    """nginx with ``deploy/nginx.conf``: the upstream and listen ports templated into a temporary copy."""

    def __init__(self, workdir: Path, *, upstream_port: int, client_max_body_size: int) -> None:
        self.workdir, self.port = workdir, free_port()
        self.log = workdir / "nginx-error.log"
        conf = NGINX_CONF.read_text()
        for anchor in ("listen 80;", "server web:8000;", "client_max_body_size 51m;", "access_log /var/log/nginx/"):
            assert anchor in conf, f"deploy/nginx.conf no longer has {anchor!r}: update tests/http/servers.py"
        conf = conf.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        conf = conf.replace("server web:8000;", f"server 127.0.0.1:{upstream_port};")
        conf = conf.replace("client_max_body_size 51m;", f"client_max_body_size {client_max_body_size};")
        # Every file nginx writes goes inside the test's folder.
        prefix = workdir / "nginx"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        head = f"daemon off;\npid {prefix / 'nginx.pid'};\nerror_log {self.log} info;\n"
        if os.geteuid() == 0:
            head += "user root;\n"  # its workers must reach the test's (private) temporary folders
        conf = conf.replace("# --- process (replaced by tests) ---", head)
        conf = conf.replace(
            "access_log /var/log/nginx/access.log;",
            f"access_log {prefix / 'access.log'};\n    client_body_temp_path {prefix / 'client_body'};\n"
            f"    proxy_temp_path {prefix / 'proxy'};\n    fastcgi_temp_path {prefix / 'fastcgi'};\n"
            f"    uwsgi_temp_path {prefix / 'uwsgi'};\n    scgi_temp_path {prefix / 'scgi'};",
        )
        self.conf_path = workdir / "nginx.conf"
        self.conf_path.write_text(conf)
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = self.binary()
        assert binary, "nginx is not installed: make test installs Debian's nginx"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.conf_path), "-p", str(self.workdir / "nginx")],
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, process=self.process, log=self.log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
