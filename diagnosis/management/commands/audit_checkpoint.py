"""Sign the audit chain head and append it to the checkpoint file (the Celery beat task does this periodically)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from diagnosis.services.audit_checkpoints import CheckpointError, audit_checkpoint_write


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--file",
            type=Path,
            default=None,
            help="JSON-lines file to append to (default: PNEUMO_AUDIT_CHECKPOINT_FILE). Keep it outside the database.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"] or Path(settings.PNEUMO_AUDIT_CHECKPOINT_FILE)
        try:
            checkpoint = audit_checkpoint_write(path=path)
        except CheckpointError as error:
            raise CommandError(f"Audit checkpoint REFUSED: {error}") from None
        self.stdout.write(
            self.style.SUCCESS(f"Checkpoint written to {path}: {checkpoint.count} events, key {checkpoint.key_id}.")
        )
