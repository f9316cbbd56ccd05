"""Key the audit chain: a key id per event, a signed chain head, and (PostgreSQL) a trigger guarding the head.

Existing events keep an empty ``key_id``: they stay plain sha256 rows and verify as legacy rows, accepted only
before the first keyed event. The existing head is signed here with the configured current key, so from now on a
head moved back over deleted events is detected. Run ``verify_audit_chain`` before upgrading: this signature
vouches for the chain as it is now.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models

# Must stay identical to diagnosis.services.audit_signing.audit_head_mac (migrations do not import app code).
HEAD_PREFIX = "pneumoweb-audit-head\n"

# The head may only advance by one, onto the newest event, whose link must be the old head; it is never deleted.
# The table is qualified with the trigger's own schema: a temporary table of the same name (pg_temp is searched
# first) must not be able to stand in for the events.
PG_HEAD_GUARD = """
CREATE OR REPLACE FUNCTION diagnosis_auditchainhead_guard() RETURNS trigger AS $$
DECLARE
    newest_hash text;
    newest_prev text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit chain head cannot be deleted';
    END IF;
    EXECUTE format('SELECT hash, prev_hash FROM %I.diagnosis_auditevent ORDER BY id DESC LIMIT 1', TG_TABLE_SCHEMA)
        INTO newest_hash, newest_prev;
    IF NEW.id <> OLD.id OR NEW.count <> OLD.count + 1
       OR newest_hash IS DISTINCT FROM NEW.last_hash OR newest_prev IS DISTINCT FROM OLD.last_hash THEN
        RAISE EXCEPTION 'the audit chain head may only advance by one event, onto the newest event';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS diagnosis_auditchainhead_guard ON diagnosis_auditchainhead;
CREATE TRIGGER diagnosis_auditchainhead_guard BEFORE UPDATE OR DELETE ON diagnosis_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION diagnosis_auditchainhead_guard();
"""
PG_HEAD_GUARD_REVERSE = """
DROP TRIGGER IF EXISTS diagnosis_auditchainhead_guard ON diagnosis_auditchainhead;
DROP FUNCTION IF EXISTS diagnosis_auditchainhead_guard();
"""


# Adding a NOT NULL column makes Django rebuild a SQLite table, which drops its triggers: put 0002's back.
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER IF NOT EXISTS diagnosis_auditevent_no_update BEFORE UPDATE ON diagnosis_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;",
    "CREATE TRIGGER IF NOT EXISTS diagnosis_auditevent_no_delete BEFORE DELETE ON diagnosis_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;",
]


def sign_existing_head(apps, schema_editor):  # type: ignore[no-untyped-def]
    head_model = apps.get_model("diagnosis", "AuditChainHead")
    key_id = settings.PNEUMO_AUDIT_KEY_ID
    secret = settings.PNEUMO_AUDIT_KEYS[key_id].encode("utf-8")
    for head in head_model.objects.filter(key_id=""):
        if head.count == 0:
            continue  # an empty chain: the first append signs it
        message = f"{HEAD_PREFIX}{head.count}:{head.last_hash}".encode()
        head.key_id = key_id
        head.mac = hmac.new(secret, message, hashlib.sha256).hexdigest()
        head.save(update_fields=["key_id", "mac"])


def head_guard(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_HEAD_GUARD, params=None)  # no %-interpolation of the PL/pgSQL body
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def drop_head_guard(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_HEAD_GUARD_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0005_audit_action_choices")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(
                blank=True, default="", help_text="Audit key id ('' = legacy sha256).", max_length=32
            ),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(sign_existing_head, migrations.RunPython.noop),
        migrations.RunPython(head_guard, drop_head_guard),
    ]
