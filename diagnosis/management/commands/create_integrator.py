"""Create an integrator account (API only, sees only its own studies) and print its API token, once."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.exceptions import InvalidInputError
from diagnosis.management.commands._token_output import write_token
from diagnosis.services.integrators import integrator_create


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="Account name of the integrating system, e.g. ris-gateway.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            _, token = integrator_create(name=options["name"])
        except InvalidInputError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Integrator {options['name']} created."))
        write_token(self.stdout, token)
