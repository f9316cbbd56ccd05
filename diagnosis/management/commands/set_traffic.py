"""Share new studies between serving model versions, e.g. `set_traffic v3=90 v4=10` (shares add up to 100)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from diagnosis.exceptions import ModelVersionError
from diagnosis.selectors.model_versions import model_version_serving
from diagnosis.services.model_versions import STOPPED_SERVING_STATUS, model_version_set_traffic


def parse_shares(pairs: list[str]) -> dict[str, int]:
    """``["v3=90", "v4=10"]`` -> ``{"v3": 90, "v4": 10}``; a malformed or repeated pair is a CommandError."""
    shares: dict[str, int] = {}
    for pair in pairs:
        name, sep, share = pair.rpartition("=")
        if not sep or not name or not share.strip().isdigit():
            raise CommandError(f"Expected NAME=PERCENT (for example v3=90). Received: {pair!r}")
        if name in shares:
            raise CommandError(f"{name} is named twice.")
        shares[name] = int(share)
    return shares


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "shares",
            nargs="+",
            metavar="NAME=PERCENT",
            help="Every version that should serve new studies, with its whole-percent share. "
            "Serving versions left out stop serving.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        shares = parse_shares(options["shares"])
        before = {version.version: version.traffic_share for version in model_version_serving()}
        try:
            serving = model_version_set_traffic(shares=shares)
        except ModelVersionError as exc:
            raise CommandError(exc.message) from exc
        after = {version.version: version.traffic_share for version in serving}
        if after == before:
            self.stdout.write("Traffic unchanged: " + ", ".join(f"{n} {s} %" for n, s in after.items()))
            return
        self.stdout.write(
            self.style.SUCCESS(
                "Traffic for studies queued from now on: " + ", ".join(f"{n} {s} %" for n, s in after.items())
            )
        )
        self.stdout.write("  before: " + (", ".join(f"{n} {s} %" for n, s in before.items()) or "none"))
        stopped = sorted(set(before) - set(after))
        if stopped:
            self.stdout.write(f"  stopped serving (now {STOPPED_SERVING_STATUS.value}): {', '.join(stopped)}")
        self.stdout.write("  Studies already queued keep the version they were assigned.")
