"""Issue a new API token for an integrator, print it once, and revoke its old tokens (unless --keep-old)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.exceptions import InvalidInputError
from diagnosis.management.commands._token_output import write_token
from diagnosis.services.integrators import integrator_token_rotate


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="Account name of the integrator, e.g. ris-gateway.")
        parser.add_argument(
            "--keep-old",
            action="store_true",
            help="Keep the integrator's current tokens valid until they expire (time to switch over); by default "
            "they are revoked at once.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = integrator_token_rotate(name=options["name"], keep_old=options["keep_old"])
        except InvalidInputError as exc:
            raise CommandError(exc.message) from exc
        kept = "kept until they expire" if options["keep_old"] else f"revoked: {token.revoked}"
        self.stdout.write(self.style.SUCCESS(f"New token issued for {options['name']} (old tokens {kept})."))
        write_token(self.stdout, token)
