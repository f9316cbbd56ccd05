"""The web process never imports TensorFlow; the docker-compose file stays valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_serving_a_request_does_not_import_tensorflow() -> None:
    code = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "pneumoweb.settings.test"
import django
django.setup()
from django.test import Client
from django.urls import get_resolver
import pneumoweb.wsgi, diagnosis.admin, diagnosis.selectors.studies, diagnosis.services.studies
import diagnosis.ops.health, diagnosis.tasks
get_resolver().url_patterns  # import every view module
Client().get("/healthz")
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(",".join(heavy))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), f"web process imported: {result.stdout}"


def test_docker_compose_defines_the_whole_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"web", "worker", "db", "redis"} <= set(compose["services"])
    assert "celery" in compose["services"]["worker"]["command"]
    env = compose["x-app"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and env["REDIS_URL"].startswith("redis://")
