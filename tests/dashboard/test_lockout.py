"""Lockout (issue 8): password spraying from one address is locked too, a lockout says when to retry, and
dashboard uploads share the API's per-user upload rate."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from diagnosis.models import ModelVersion, Study
from tests.factories import TEST_PASSWORD, RadiologistFactory, png_bytes

pytestmark = pytest.mark.django_db

SPRAYED = "Winter2026!"  # one password tried against many accounts
IP_LIMIT = 8


@pytest.fixture(autouse=True)
def _axes_on_and_fresh_counters() -> Iterator[None]:
    if not settings.AXES_ENABLED:
        pytest.skip("django-axes is disabled")
    cache.clear()  # upload counters live in the cache
    yield
    cache.clear()


def _login(client: Client, username: str, password: str, ip: str = "10.0.0.7") -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


@override_settings(PNEUMO_LOGIN_IP_FAILURE_LIMIT=IP_LIMIT)
def test_spraying_one_password_over_many_usernames_from_one_address_gets_that_address_locked(
    client: Client, radiologist: Any
) -> None:
    statuses = [_login(client, f"user{n}", SPRAYED).status_code for n in range(IP_LIMIT)]
    # The form again with an error, until the address reaches its limit: no single account came close to its own.
    assert statuses == [200] * (IP_LIMIT - 1) + [429]
    # Even the right password of a real account is refused from that address now...
    response = _login(client, radiologist.username, TEST_PASSWORD)
    assert response.status_code == 429
    assert client.get(reverse("dashboard:worklist")).status_code == 302
    # ...while the same account still logs in from another address.
    assert _login(Client(), radiologist.username, TEST_PASSWORD, ip="10.0.0.99").status_code == 302


@override_settings(PNEUMO_LOGIN_IP_FAILURE_LIMIT=IP_LIMIT)
def test_a_few_typos_from_a_shared_address_do_not_lock_the_other_users_behind_it(client: Client) -> None:
    colleagues = [RadiologistFactory(username=f"colleague{n}") for n in range(3)]
    for colleague in colleagues:
        assert _login(Client(), colleague.username, "typo-password").status_code == 200
    assert _login(client, colleagues[0].username, TEST_PASSWORD).status_code == 302


def test_a_locked_account_is_told_when_to_retry(client: Client, radiologist: Any) -> None:
    for _ in range(settings.PNEUMO_LOGIN_FAILURE_LIMIT):
        _login(client, radiologist.username, "wrong-password")
    response = _login(client, radiologist.username, TEST_PASSWORD)
    assert response.status_code == 429
    cool_off_seconds = int(settings.AXES_COOLOFF_TIME * 3600)
    assert response["Retry-After"] == str(cool_off_seconds)
    assert b"Try again in 15 minutes" in response.content


def test_a_locked_script_gets_json_with_retry_after(client: Client, radiologist: Any) -> None:
    for _ in range(settings.PNEUMO_LOGIN_FAILURE_LIMIT):
        _login(client, radiologist.username, "wrong-password")
    response = client.post(
        reverse("login"),
        {"username": radiologist.username, "password": TEST_PASSWORD},
        REMOTE_ADDR="10.0.0.7",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["retry_after"] == int(response["Retry-After"])


_distinct_sizes = itertools.count(64)


def _png(name: str = "chest.png") -> SimpleUploadedFile:
    # A different image each time: the same file sent again is a retry and returns the study it already made.
    return SimpleUploadedFile(name, png_bytes(width=next(_distinct_sizes)), content_type="image/png")


RATE_2_PER_HOUR = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"uploads": "2/hour"}}


@override_settings(REST_FRAMEWORK=RATE_2_PER_HOUR)
def test_dashboard_uploads_beyond_the_rate_get_429_with_retry_after(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    for _ in range(2):
        assert radiologist_web.post(reverse("dashboard:upload_file"), {"file": _png()}).status_code == 201
    response = radiologist_web.post(reverse("dashboard:upload_file"), {"file": _png()})
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    assert "Too many uploads" in response.json()["detail"]
    assert Study.objects.count() == 2
    # The plain form (no script) is held to the same counter.
    form = radiologist_web.post(reverse("dashboard:upload"), {"file": [_png("a.png"), _png("b.png")]})
    assert form.status_code == 429 and int(form["Retry-After"]) > 0
    assert "Too many uploads" in form.content.decode()
    assert Study.objects.count() == 2


@override_settings(REST_FRAMEWORK=RATE_2_PER_HOUR)
def test_the_api_and_the_dashboard_share_one_upload_counter(
    radiologist: Any, radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    api = APIClient()
    api.force_login(radiologist)
    assert api.post("/api/v1/studies/", {"file": _png()}, format="multipart").status_code == 202
    assert radiologist_web.post(reverse("dashboard:upload_file"), {"file": _png()}).status_code == 201
    assert api.post("/api/v1/studies/", {"file": _png()}, format="multipart").status_code == 429
    assert radiologist_web.post(reverse("dashboard:upload_file"), {"file": _png()}).status_code == 429
