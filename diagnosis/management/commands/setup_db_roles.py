"""Grant the app's PostgreSQL role its privileges: run as the owner role after every migrate (see README)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.services.db_roles import DbRoleError, db_roles_setup


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--app-role",
            required=True,
            help="Existing role web and workers connect as: not the owner, a member of it, or a superuser.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checks = db_roles_setup(app_role=options["app_role"])
        except DbRoleError as error:
            raise CommandError(str(error)) from None
        for check in checks:
            self.stdout.write(check.describe())
        self.stdout.write(self.style.SUCCESS(f"Privileges of {options['app_role']} set up."))
