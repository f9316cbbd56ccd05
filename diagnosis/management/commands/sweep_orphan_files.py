"""Remove stored files that no study or prediction references (failed uploads, interrupted workers)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from diagnosis.services.storage import storage_sweep_orphans


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="Grace period in seconds: younger files may belong to work in flight (default: "
            "PNEUMO_ORPHAN_GRACE_SECONDS).",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would be removed; remove nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = (
            options["older_than"] if options["older_than"] is not None else settings.PNEUMO_ORPHAN_GRACE_SECONDS
        )
        report = storage_sweep_orphans(older_than_seconds=older_than, dry_run=options["dry_run"])
        verb = "Would remove" if options["dry_run"] else "Removed"
        for name in report.removed:
            self.stdout.write(f"{verb} {name}")
        self.stdout.write(
            f"{verb} {len(report.removed)} orphan files ({report.removed_bytes} bytes) and "
            f"{report.removed_dirs} empty folders; kept {report.kept_young} younger than {older_than} s; "
            f"skipped {report.skipped_links} symlinks."
        )
