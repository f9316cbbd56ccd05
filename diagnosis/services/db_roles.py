"""Grant the application's PostgreSQL role what it needs, and no power over the audit tables.

Two roles (issue 8): the **owner** runs migrations and owns every table; the **app** role (web, workers) reads and
writes the ordinary tables but may only INSERT and SELECT audit events and advance the chain head. Only a table's
owner can ALTER it or disable its triggers, so the app role cannot do either. ``manage.py setup_db_roles`` runs
this as the owner after every ``migrate``; it is idempotent, and default privileges give the app role access to
tables later migrations create (re-run it after a migration that adds an audit table, and list it below).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection

# Audit tables and the only privileges the app role holds on them. The head needs UPDATE to advance (a trigger
# limits it to one-step advances onto the newest event) and SELECT ... FOR UPDATE to serialise appends.
AUDIT_TABLE_PRIVILEGES = {
    "diagnosis_auditevent": ("SELECT", "INSERT"),
    "diagnosis_auditchainhead": ("SELECT", "UPDATE"),
}
# Django only reads its migration history outside ``migrate``.
READ_ONLY_TABLES = ("django_migrations",)
FORBIDDEN_ON_AUDIT = ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")
_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class DbRoleError(Exception):
    """The roles cannot be set up as asked (not PostgreSQL, a bad or dangerous app role)."""


@dataclass(frozen=True)
class PrivilegeCheck:
    table: str
    privilege: str
    granted: bool
    allowed: bool

    def describe(self) -> str:
        verdict = "ok" if self.granted == self.allowed else "WRONG"
        return f"{self.privilege} on {self.table}: {'yes' if self.granted else 'no'} ({verdict})"


def _quote(role: str) -> str:
    if not _ROLE_NAME.fullmatch(role):
        raise DbRoleError(f"Role names are letters, digits and '_' (at most 63). Received: {role!r}")
    return f'"{role}"'


def _refuse_dangerous_app_role(app_role: str) -> str:
    """Return the owner (current user); refuse an app role that is, or could act as, the owner or a superuser."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, r.rolsuper, r.rolbypassrls, pg_has_role(%s, current_user, 'MEMBER') "
            "FROM pg_roles r WHERE r.rolname = %s",
            [app_role, app_role],
        )
        row = cursor.fetchone()
    if row is None:
        raise DbRoleError(f"Role {app_role!r} does not exist: create it first (CREATE ROLE {app_role} LOGIN ...).")
    owner, superuser, bypass_rls, member_of_owner = row
    if app_role == owner or member_of_owner:
        raise DbRoleError(f"The app role must not be the owner {owner!r} or a member of it. Received: {app_role!r}")
    if superuser or bypass_rls:
        raise DbRoleError(f"The app role {app_role!r} must not be a superuser (it could bypass every protection).")
    return str(owner)


def _grant_statements(app: str, schema: str, database: str) -> list[str]:
    statements = [
        f"GRANT CONNECT ON DATABASE {database} TO {app}",
        f"GRANT USAGE ON SCHEMA {schema} TO {app}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        # Tables and sequences the owner creates in later migrations.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
    for table in READ_ONLY_TABLES:
        statements += [f"REVOKE ALL ON {schema}.{table} FROM {app}", f"GRANT SELECT ON {schema}.{table} TO {app}"]
    for table, privileges in AUDIT_TABLE_PRIVILEGES.items():
        statements += [
            f"REVOKE ALL ON {schema}.{table} FROM {app}",
            f"REVOKE ALL ON {schema}.{table} FROM PUBLIC",
            f"GRANT {', '.join(privileges)} ON {schema}.{table} TO {app}",
        ]
    return statements


def db_roles_check(*, app_role: str) -> list[PrivilegeCheck]:
    """What the app role may do on the audit tables (and the schema), against what it should."""
    checks = []
    with connection.cursor() as cursor:
        # Creating objects in the schema (PostgreSQL before 15 lets PUBLIC do it) is DDL the app never needs.
        cursor.execute("SELECT current_schema(), has_schema_privilege(%s, current_schema(), 'CREATE')", [app_role])
        schema, may_create = cursor.fetchone() or ("public", False)
        checks.append(PrivilegeCheck(f"schema {schema}", "CREATE", bool(may_create), False))
        for table, allowed in AUDIT_TABLE_PRIVILEGES.items():
            for privilege in (*allowed, *FORBIDDEN_ON_AUDIT):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [app_role, table, privilege])
                (granted,) = cursor.fetchone() or (False,)
                checks.append(PrivilegeCheck(table, privilege, bool(granted), privilege in allowed))
    return checks


def db_roles_setup(*, app_role: str) -> list[PrivilegeCheck]:
    """Grant ``app_role`` its privileges as the owner (the connected user); return the audit-table check.

    Raises:
        DbRoleError: not PostgreSQL, the role is missing, or it is the owner, a member of it or a superuser.
    """
    if connection.vendor != "postgresql":
        raise DbRoleError("Database roles apply to PostgreSQL only (SQLite has no roles).")
    app = _quote(app_role)
    _refuse_dangerous_app_role(app_role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT quote_ident(current_schema()), quote_ident(current_database())")
        schema, database = cursor.fetchone() or ("public", "")
        for statement in _grant_statements(app, schema, database):
            cursor.execute(statement)
    checks = db_roles_check(app_role=app_role)
    wrong = [check.describe() for check in checks if check.granted != check.allowed]
    if wrong:
        raise DbRoleError(
            f"Privileges still wrong after granting: {'; '.join(wrong)}. A schema CREATE held through PUBLIC needs the "
            "schema's owner or a superuser: REVOKE CREATE ON SCHEMA public FROM PUBLIC."
        )
    return checks
