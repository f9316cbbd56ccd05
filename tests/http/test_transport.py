"""Transport under production settings: HSTS, the SSL redirect (probes exempt), a clean ``check --deploy``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What production looks like from inside the web process, in a subprocess (production settings refuse SQLite).
PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
answers = {}
for name, path, extra in [
    ("healthz_http", "/healthz", {}),
    ("readyz_http", "/readyz", {}),
    ("login_http", "/accounts/login/?next=/", {}),
    ("healthz_https", "/healthz", {"HTTP_X_FORWARDED_PROTO": "https"}),
]:
    response = client.get(path, **extra)
    answers[name] = {
        "status": response.status_code,
        "location": response.get("Location", ""),
        "hsts": response.get("Strict-Transport-Security", ""),
    }
print(json.dumps(answers))
"""


def production_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "pneumoweb.settings.production",
            "DATABASE_URL": "postgres://pneumoweb@127.0.0.1:5432/pneumoweb",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_ALLOWED_HOSTS": "testserver,pneumoweb.example.org",
            "PNEUMO_VAR_DIR": str(tmp_path / "var"),
            # Required in production by the keyed audit chain; harmless where it is not read.
            "PNEUMO_AUDIT_KEYS": "1:" + "ab" * 32,
            "PNEUMO_AUDIT_KEY_ID": "1",
        }
    )
    for name in ("PNEUMO_SSL_REDIRECT", "PNEUMO_HSTS_SECONDS", "PNEUMO_SECURE_COOKIES", "DJANGO_DEBUG"):
        env.pop(name, None)
    return env


def test_check_deploy_passes_without_warnings_under_production_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.fixture(scope="module")
def production_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=production_env(tmp_path_factory.mktemp("prod")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, dict[str, object]] = json.loads(result.stdout.strip().splitlines()[-1])
    return answers


def test_plain_http_pages_are_redirected_to_https(production_answers: dict[str, dict[str, object]]) -> None:
    assert production_answers["login_http"]["status"] == 301
    assert production_answers["login_http"]["location"] == "https://testserver/accounts/login/?next=/"


def test_probes_answer_over_plain_http(production_answers: dict[str, dict[str, object]]) -> None:
    assert production_answers["healthz_http"]["status"] == 200
    # Not ready in this bare environment (no model, no worker), but answered, not redirected.
    assert production_answers["readyz_http"]["status"] in (200, 503)


def test_https_answers_carry_hsts(production_answers: dict[str, dict[str, object]]) -> None:
    hsts = production_answers["healthz_https"]["hsts"]
    assert hsts == "max-age=31536000; includeSubDomains; preload"
