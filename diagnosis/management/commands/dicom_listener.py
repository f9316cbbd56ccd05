"""Run the DICOM listener (Storage SCP): studies sent by a PACS or modality by C-STORE are received and screened."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from diagnosis.listener.scp import build_ae, serve


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=None, help="TCP port (default: PNEUMO_DICOM_PORT, 11112).")
        parser.add_argument(
            "--ae-title", default=None, help="Our AE title; callers must use it (default: PNEUMO_DICOM_AE_TITLE)."
        )
        parser.add_argument("--host", default="0.0.0.0", help="Address to listen on (default: all).")  # noqa: S104

    def handle(self, *args: Any, **options: Any) -> None:
        port = options["port"] if options["port"] is not None else settings.PNEUMO_DICOM_PORT
        ae_title = (options["ae_title"] or settings.PNEUMO_DICOM_AE_TITLE).strip()
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1-65535. Received: {port}")
        if not 0 < len(ae_title) <= 16 or not all(32 <= ord(ch) < 127 and ch != "\\" for ch in ae_title):
            raise CommandError(f"--ae-title must be 1-16 printable characters, no backslash. Received: {ae_title!r}")
        ae = build_ae(
            ae_title=ae_title,
            acse_timeout=settings.PNEUMO_DICOM_ACSE_TIMEOUT,
            dimse_timeout=settings.PNEUMO_DICOM_DIMSE_TIMEOUT,
            network_timeout=settings.PNEUMO_DICOM_NETWORK_TIMEOUT,
            maximum_associations=settings.PNEUMO_DICOM_MAX_ASSOCIATIONS,
        )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"DICOM listener {ae_title} on port {port} (Ctrl-C or SIGTERM stops it)")
        try:
            serve(ae=ae, host=options["host"], port=port, stop=stop)
        except OSError as exc:
            raise CommandError(f"Cannot listen on port {port}: {exc}") from exc
        self.stdout.write("DICOM listener stopped")
