"""Create an integrator account (API only, sees only its own studies) and print its API token."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from diagnosis.services.audit import audit_record


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="Account name of the integrating system, e.g. ris-gateway.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        name = options["name"]
        if user_model.objects.filter(username=name).exists():
            raise CommandError(f"An account named {name!r} already exists.")
        user = user_model.objects.create_user(username=name)
        user.set_unusable_password()  # token only: an integrator never logs in to the dashboard
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name="integrator"))
        token = Token.objects.create(user=user)
        audit_record(action="integrator.created", subject_type="user", subject_id=name)
        self.stdout.write(self.style.SUCCESS(f"Integrator {name} created. API token: {token.key}"))
        self.stdout.write("Send it as the header  Authorization: Token <token>")
