"""Create the first admin account if there is none (audited), and print its credentials once."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from diagnosis.services.accounts import first_admin_ensure


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default="admin", help="Admin user name (default: admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        admin, password = first_admin_ensure(username=options["username"])
        name = admin.get_username()
        if password is None:
            self.stdout.write(
                f"An admin account already exists: {name} (its password was shown when it was "
                f"created; forgot it? python manage.py changepassword {name})"
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin account created. Username: {name}  Password: {password}\n"
                "Sign in at /admin/ or at the dashboard; change the password after the first login."
            )
        )
