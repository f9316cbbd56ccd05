"""Create a radiologist's dashboard account (group ``radiologist``); print a one-time password or read one."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.exceptions import InvalidInputError
from diagnosis.services.accounts import radiologist_create


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username", help="Login name of the radiologist, e.g. rita.marsh.")
        parser.add_argument("--email", default="", help="E-mail address (optional).")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input instead of generating one "
            "(e.g. from a password manager: `pass show pw/rita | manage.py create_radiologist rita --password-stdin`).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin: standard input held no password.")
        try:
            user, generated = radiologist_create(
                username=options["username"], email=options["email"], password=password
            )
        except InvalidInputError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Radiologist {user.username} created (group radiologist)."))
        if generated is not None:
            self.stdout.write(f"One-time password: {generated}")
            self.stdout.write(
                "It is shown only this once and is not stored anywhere readable. Hand it over in person or through "
                "the hospital's secure channel. PneumoWeb does not force a change at first login: ask the "
                "radiologist to choose their own at /accounts/password_change/ after logging in."
            )
