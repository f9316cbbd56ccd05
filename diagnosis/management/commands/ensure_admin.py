"""Create the first admin account if there is none, and print its credentials once."""

from __future__ import annotations

import secrets
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default="admin", help="Admin user name (default: admin).")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            self.stdout.write(
                f"An admin account already exists: {existing.get_username()} (its password was shown when it was "
                f"created; forgot it? python manage.py changepassword {existing.get_username()})"
            )
            return
        password = secrets.token_urlsafe(12)
        admin = user_model.objects.create_superuser(options["username"], email="", password=password)
        # The first account also reads and reviews studies, so a new site can try the whole flow at once.
        admin.groups.add(Group.objects.get(name="radiologist"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Admin account created. Username: {options['username']}  Password: {password}\n"
                "Sign in at /admin/ or at the dashboard; change the password after the first login."
            )
        )
