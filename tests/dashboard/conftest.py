"""Dashboard fixtures: logged-in Django test clients for each persona (personas come from ``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture
def radiologist_web(radiologist: Any) -> Client:
    client = Client()
    client.force_login(radiologist, backend=MODEL_BACKEND)
    return client


@pytest.fixture
def admin_web(admin_user: Any) -> Client:
    client = Client()
    client.force_login(admin_user, backend=MODEL_BACKEND)
    return client


@pytest.fixture
def integrator_web(integrator: Any) -> Client:
    client = Client()
    client.force_login(integrator, backend=MODEL_BACKEND)
    return client
