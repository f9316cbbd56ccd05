"""Recompute the audit log's hash chain and report the first event that was altered or removed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.services.audit import audit_chain_verify


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_chain_verify()
        if not result.ok:
            where = f" at event {result.first_bad_id}" if result.first_bad_id is not None else ""
            raise CommandError(f"Audit chain BROKEN{where} after {result.checked} good events: {result.reason}")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {result.checked} events verified."))
