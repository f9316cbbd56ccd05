"""Audit chain genesis row, a PostgreSQL trigger that refuses UPDATE/DELETE on audit events, and the two roles."""

from __future__ import annotations

from django.db import migrations

GENESIS_HASH = "0" * 64

PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION diagnosis_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS diagnosis_auditevent_append_only ON diagnosis_auditevent;
-- TRUNCATE is left to the table owner (test databases are flushed with it); the application role should not own
-- the table in production.
CREATE TRIGGER diagnosis_auditevent_append_only BEFORE UPDATE OR DELETE ON diagnosis_auditevent
    FOR EACH ROW EXECUTE FUNCTION diagnosis_auditevent_append_only();
"""
PG_APPEND_ONLY_REVERSE = """
DROP TRIGGER IF EXISTS diagnosis_auditevent_append_only ON diagnosis_auditevent;
DROP FUNCTION IF EXISTS diagnosis_auditevent_append_only();
"""
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER IF NOT EXISTS diagnosis_auditevent_no_update BEFORE UPDATE ON diagnosis_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;",
    "CREATE TRIGGER IF NOT EXISTS diagnosis_auditevent_no_delete BEFORE DELETE ON diagnosis_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;",
]


def append_only_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_APPEND_ONLY, params=None)  # no %-interpolation of the PL/pgSQL body
    elif vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def drop_append_only_trigger(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_APPEND_ONLY_REVERSE)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS diagnosis_auditevent_no_update")
        schema_editor.execute("DROP TRIGGER IF EXISTS diagnosis_auditevent_no_delete")


def create_chain_head_and_roles(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("diagnosis", "AuditChainHead").objects.get_or_create(
        id=1, defaults={"last_hash": GENESIS_HASH, "count": 0}
    )
    group = apps.get_model("auth", "Group")
    for name in ("radiologist", "integrator"):
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("diagnosis", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunPython(create_chain_head_and_roles, migrations.RunPython.noop),
        migrations.RunPython(append_only_trigger, drop_append_only_trigger),
    ]
