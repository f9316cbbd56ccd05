"""Request ids tie a response, its log lines and its audit rows together."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from diagnosis.log_context import ContextFilter, JsonFormatter, request_id_var
from diagnosis.models import AuditEvent
from tests.factories import RadiologistFactory, StudyFactory

pytestmark = pytest.mark.django_db


def test_a_sane_incoming_request_id_is_kept_and_echoed_and_lands_in_the_audit_row() -> None:
    study = StudyFactory(completed=True)
    client = Client()
    client.force_login(RadiologistFactory(), backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(f"/api/v1/studies/{study.id}/", HTTP_X_REQUEST_ID="req-1234abcd")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-1234abcd"
    assert AuditEvent.objects.get(action="study.viewed").request_id == "req-1234abcd"


def test_an_unsafe_request_id_is_replaced() -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32


def test_log_lines_are_json_with_the_current_request_id() -> None:
    record = logging.LogRecord("diagnosis", logging.INFO, __file__, 1, "study %s queued", ("abc",), None)
    token = request_id_var.set("req-42")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "study abc queued" and line["request_id"] == "req-42" and line["level"] == "INFO"
