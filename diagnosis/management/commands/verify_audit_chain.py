"""Verify the audit log's signed chain (with --checkpoints, also against exported checkpoints); report any break."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.services.audit import audit_chain_verify


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--checkpoints",
            type=Path,
            default=None,
            help="JSON-lines file of signed head checkpoints (PNEUMO_AUDIT_CHECKPOINT_FILE) the chain must match.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_chain_verify(checkpoint_file=options["checkpoints"])
        if not result.ok:
            where = f" at event {result.first_bad_id}" if result.first_bad_id is not None else ""
            raise CommandError(f"Audit chain BROKEN{where} after {result.checked} good events: {result.reason}")
        against = " and the checkpoints" if options["checkpoints"] else ""
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {result.checked} events verified{against}."))
