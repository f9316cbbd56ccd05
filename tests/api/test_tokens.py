"""API tokens (issue 8): stored hashed, expiring, rotated by a command, printed once, never logged."""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent
from diagnosis.services.audit import audit_chain_verify

pytestmark = pytest.mark.django_db

STUDIES = "/api/v1/studies/"


def _printed_token(output: str) -> str:
    return output.split("API token: ")[1].split()[0]


def _create_integrator(name: str = "ris-gateway") -> tuple[str, str]:
    out = io.StringIO()
    call_command("create_integrator", name, stdout=out)
    return _printed_token(out.getvalue()), out.getvalue()


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _every_stored_value() -> str:
    """Every row of every table of the database, as one string: a secret stored anywhere shows up here."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (introspected names)
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_the_database_holds_a_digest_of_the_token_never_the_token() -> None:
    token, _ = _create_integrator()
    assert _client(token).get(STUDIES).status_code == 200
    stored = _every_stored_value()
    assert token not in stored
    assert hashlib.sha512(token.encode()).hexdigest() in stored  # knox keeps the SHA-512 digest


def test_an_expired_token_is_refused_with_a_401_json_answer() -> None:
    token, output = _create_integrator()
    later = timezone.now() + timedelta(days=settings.PNEUMO_API_TOKEN_TTL_DAYS, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = _client(token).get(STUDIES)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Invalid token."}
    assert response["WWW-Authenticate"] == "Token"
    assert "expires" in output  # the operator is told when
    # Still valid the day before it expires.
    earlier = later - timedelta(days=1)
    with mock.patch("django.utils.timezone.now", return_value=earlier):
        token_2, _ = _create_integrator("other-pacs")
    assert _client(token_2).get(STUDIES).status_code == 200


def test_rotation_revokes_the_old_token_prints_the_new_one_once_and_is_audited() -> None:
    old, _ = _create_integrator()
    out = io.StringIO()
    call_command("rotate_integrator_token", "ris-gateway", stdout=out)
    new = _printed_token(out.getvalue())
    assert new != old
    assert out.getvalue().count(new) == 1
    assert _client(old).get(STUDIES).status_code == 401
    assert _client(new).get(STUDIES).status_code == 200
    event = AuditEvent.objects.get(action="integrator.token_rotated")
    assert (event.subject_id, event.details["revoked_tokens"], event.details["kept_old_tokens"]) == (
        "ris-gateway",
        1,
        False,
    )
    assert old not in str(event.details) and new not in str(event.details)
    assert audit_chain_verify().ok


def test_rotation_can_keep_the_old_token_until_it_expires() -> None:
    old, _ = _create_integrator()
    out = io.StringIO()
    call_command("rotate_integrator_token", "ris-gateway", "--keep-old", stdout=out)
    new = _printed_token(out.getvalue())
    assert _client(old).get(STUDIES).status_code == 200
    assert _client(new).get(STUDIES).status_code == 200


def test_rotation_refuses_an_account_that_is_not_an_integrator(radiologist: object) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No integrator account"):
        call_command("rotate_integrator_token", "rita.radiologist", stdout=io.StringIO())


def test_create_integrator_prints_the_token_once_and_never_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token, output = _create_integrator()
    assert output.count(token) == 1
    assert token not in caplog.text
    assert token not in str(list(AuditEvent.objects.values_list("details", flat=True)))


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_old_clear_keys_over_as_digests_and_drops_their_table(integrator: object) -> None:
    clear_key = "a" * 40
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamp)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [clear_key, integrator.pk, timezone.now()])
    migration = importlib.import_module("diagnosis.migrations.0009_api_tokens_hashed")
    with connection.schema_editor() as editor:
        migration.carry_over_and_drop(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert clear_key not in _every_stored_value()
    assert _client(clear_key).get(STUDIES).status_code == 200


def test_the_schema_documents_the_token_header_integrators_send(anonymous_client: APIClient) -> None:
    schema = anonymous_client.get("/api/schema/", {"format": "json"}).json()
    scheme = schema["components"]["securitySchemes"]["knoxApiToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert 'prefix "Token"' in scheme["description"]
    assert {"knoxApiToken": []} in schema["paths"]["/api/v1/studies/"]["get"]["security"]
