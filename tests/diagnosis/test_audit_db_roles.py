"""With separate database roles, the app's own credentials cannot tamper with the audit tables (issue 8, point 1).

A scratch database owned by a throwaway owner role is migrated as that owner (as docker-compose's ``migrate``
service does), ``setup_db_roles`` grants a throwaway app role its privileges, and every tampering step of the issue
is then tried with the app role's credentials. Role and database names carry the test database's name, so parallel
runs on one server never clash, and everything is dropped afterwards. The server's own roles are never touched.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="database roles are PostgreSQL-only")


@dataclass(frozen=True)
class Scratch:
    database: str
    owner: str
    app: str
    host: str
    port: str
    # Both throwaway roles log in with it, so the test also works where the server asks for passwords.
    password: str

    def url(self, role: str) -> str:
        return f"postgres://{role}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect(self, role: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, dbname=self.database, user=role, password=self.password, autocommit=True
        )


def _admin(settings_dict: dict[str, object]) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(settings_dict["HOST"] or "127.0.0.1"),
        port=str(settings_dict["PORT"] or "5432"),
        user=str(settings_dict["USER"]),
        password=str(settings_dict["PASSWORD"] or "") or None,
        dbname="postgres",
        autocommit=True,
    )


def _drop(admin: psycopg.Connection[tuple[object, ...]], scratch: Scratch) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch.database)))
    for role in (scratch.app, scratch.owner):
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def scratch(django_db_setup: None) -> Iterator[Scratch]:
    settings_dict = connection.settings_dict
    base = str(settings_dict["NAME"])  # the test database's name, unique per run (and per xdist worker)
    scratch = Scratch(
        database=f"{base}_roles",
        owner=f"{base}_owner",
        app=f"{base}_app",
        host=str(settings_dict["HOST"] or "127.0.0.1"),
        port=str(settings_dict["PORT"] or "5432"),
        password=secrets.token_hex(16),
    )
    with _admin(settings_dict) as admin:
        _drop(admin, scratch)  # leftovers of a run that was killed
        for role in (scratch.owner, scratch.app):
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(scratch.password)
                )
            )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(scratch.database), sql.Identifier(scratch.owner)
            )
        )
        try:
            yield scratch
        finally:
            _drop(admin, scratch)


def _manage(scratch: Scratch, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": scratch.url(role),
        "DJANGO_SETTINGS_MODULE": "pneumoweb.settings.test",
        "DATABASE_CONN_MAX_AGE": "0",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


LEGACY_EVENTS = """
import hashlib, json
from django.db import connection
from django.utils import timezone
prev = "0" * 64
with connection.cursor() as cursor:
    for n in range(3):  # what the code before the keyed chain wrote: plain sha256, no key id
        now = timezone.now()
        content = {"created_at": now.isoformat(), "actor_id": None, "actor_name": "system", "action": "study.viewed",
                   "subject_type": "study", "subject_id": str(n), "client_ip": None, "request_id": "", "task_id": "",
                   "details": {}}
        digest = hashlib.sha256((prev + json.dumps(content, sort_keys=True, separators=(",", ":"))).encode())
        cursor.execute(
            "INSERT INTO diagnosis_auditevent (created_at, actor_name, action, subject_type, subject_id,"
            " request_id, task_id, details, prev_hash, hash)"
            " VALUES (%s, 'system', 'study.viewed', 'study', %s, '', '', '{}', %s, %s)",
            [now, str(n), prev, digest.hexdigest()],
        )
        prev = digest.hexdigest()
    cursor.execute("UPDATE diagnosis_auditchainhead SET last_hash = %s, count = 3", [prev])
"""
KEYED_EVENT = """
from diagnosis.models import AuditAction, AuditEvent
from diagnosis.services.audit import audit_record
audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id="after-upgrade")
print("key ids:", list(AuditEvent.objects.order_by("id").values_list("key_id", flat=True)))
"""


APP_WORK = """
from django.contrib.auth.models import User
from diagnosis.models import AuditAction
from diagnosis.services.audit import audit_record
user = User.objects.create_user("role-test", password="x-123456789")
User.objects.filter(pk=user.pk).update(first_name="Rita")
for n in range(3):
    audit_record(action=AuditAction.STUDY_VIEWED, subject_type="study", subject_id=str(n), actor=user)
User.objects.filter(pk=user.pk).delete()
print("app work done")
"""

TAMPERING = {
    "disable the event trigger": "ALTER TABLE diagnosis_auditevent DISABLE TRIGGER diagnosis_auditevent_append_only",
    "disable every trigger": "ALTER TABLE diagnosis_auditevent DISABLE TRIGGER ALL",
    "disable the head trigger": "ALTER TABLE diagnosis_auditchainhead DISABLE TRIGGER USER",
    "alter the event table": "ALTER TABLE diagnosis_auditevent ADD COLUMN forged text",
    "update an event": "UPDATE diagnosis_auditevent SET action = 'study.reviewed'",
    "delete an event": "DELETE FROM diagnosis_auditevent WHERE action = 'study.viewed'",
    "truncate the events": "TRUNCATE diagnosis_auditevent",
    "forge the head": (
        "UPDATE diagnosis_auditchainhead SET count = count - 1, "
        "last_hash = (SELECT prev_hash FROM diagnosis_auditevent ORDER BY id DESC LIMIT 1)"
    ),
    "advance the head without an event": "UPDATE diagnosis_auditchainhead SET count = count + 1",
    "delete the head": "DELETE FROM diagnosis_auditchainhead",
    "truncate the head": "TRUNCATE diagnosis_auditchainhead",
    "take the table over": "ALTER TABLE diagnosis_auditevent OWNER TO CURRENT_USER",
    "create objects in the schema": "CREATE TABLE public.forged_events (id int)",
}


@pytest.fixture(scope="module")
def migrated(scratch: Scratch) -> Scratch:
    """The scratch database as an upgrade leaves it: migrated as the owner, with events from before the keys."""
    for step in (
        ("migrate", "diagnosis", "0005", "--noinput"),
        ("shell", "-c", LEGACY_EVENTS),
        ("migrate", "--noinput"),
    ):
        done = _manage(scratch, scratch.owner, *step)
        assert done.returncode == 0, f"{step[0]}: {done.stderr[-3000:]}"
    return scratch


def test_events_written_before_the_upgrade_verify_as_legacy_rows(migrated: Scratch) -> None:
    before = _manage(migrated, migrated.owner, "verify_audit_chain")
    assert before.returncode == 0 and "intact" in before.stdout, before.stderr[-2000:]
    appended = _manage(migrated, migrated.owner, "shell", "-c", KEYED_EVENT)
    assert appended.returncode == 0, appended.stderr[-3000:]
    assert "key ids: ['', '', ''," in appended.stdout and appended.stdout.strip().endswith("'dev-insecure']")
    after = _manage(migrated, migrated.owner, "verify_audit_chain")
    assert after.returncode == 0 and "intact" in after.stdout, after.stderr[-2000:]


def test_the_app_role_can_append_but_every_tampering_step_is_refused(migrated: Scratch, tmp_path: Path) -> None:
    scratch = migrated
    refused_owner = _manage(scratch, scratch.owner, "setup_db_roles", "--app-role", scratch.owner)
    assert refused_owner.returncode != 0 and "must not be the owner" in refused_owner.stderr
    granted = _manage(scratch, scratch.owner, "setup_db_roles", "--app-role", scratch.app)
    assert granted.returncode == 0, granted.stderr[-3000:]
    assert "UPDATE on diagnosis_auditevent: no (ok)" in granted.stdout and "WRONG" not in granted.stdout

    # The app's ordinary work (users, audit appends) still runs with the app role's credentials.
    worked = _manage(scratch, scratch.app, "shell", "-c", APP_WORK)
    assert worked.returncode == 0 and "app work done" in worked.stdout, worked.stderr[-3000:]
    checkpoints = tmp_path / "checkpoints.jsonl"
    exported = _manage(scratch, scratch.app, "audit_checkpoint", "--file", str(checkpoints))
    assert exported.returncode == 0, exported.stderr[-3000:]

    refused = {}
    with scratch.connect(scratch.app) as app:
        for step, statement in TAMPERING.items():
            with pytest.raises(psycopg.Error) as caught:
                app.execute(statement)
            refused[step] = type(caught.value).__name__
        # A temporary table is searched before public: it must not be able to stand in for the events in the
        # head's trigger (the trigger names its own schema).
        app.execute("CREATE TEMP TABLE diagnosis_auditevent (id bigint, hash text, prev_hash text)")
        app.execute(
            "INSERT INTO diagnosis_auditevent"
            " SELECT 1000000000, 'forged', last_hash FROM public.diagnosis_auditchainhead"
        )
        with pytest.raises(psycopg.errors.RaiseException):
            app.execute("UPDATE public.diagnosis_auditchainhead SET count = count + 1, last_hash = 'forged'")
    assert set(refused) == set(TAMPERING)
    assert refused["update an event"] == refused["delete an event"] == "InsufficientPrivilege"
    assert refused["forge the head"] == "RaiseException"  # the app may advance the head, never rewind or forge it

    verified = _manage(scratch, scratch.app, "verify_audit_chain", "--checkpoints", str(checkpoints))
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr[-2000:]
