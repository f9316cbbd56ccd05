"""Give studies held by dead workers back to the queue and re-send queued studies whose message was lost."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from diagnosis.services.inference import studies_requeue_stuck


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than", type=int, default=None, help="Seconds (default: PNEUMO_STUCK_STUDY_SECONDS)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        requeued = studies_requeue_stuck(older_than_seconds=options["older_than"])
        self.stdout.write(f"Requeued {len(requeued)} studies.")
