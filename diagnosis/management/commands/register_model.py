"""Register a model artifact folder, or a Keras .h5 of the original training notebook (wrapped into an artifact)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from diagnosis.exceptions import ModelVersionError
from diagnosis.management.version_option import ModelVersionOptionCommand
from diagnosis.selectors.performance import population_note
from diagnosis.services.model_registration import model_version_register


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", help="Artifact folder (model.keras + manifest.json) or a notebook .h5 file.")
        parser.add_argument(
            "--version", default=None, help="Version name (default: the manifest's version, or the .h5 file name)."
        )
        parser.add_argument("--notes", default="", help="Free text kept with the version.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            version = model_version_register(path=path, version=options["version"], notes=options["notes"])
        except ModelVersionError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {version.version} ({version.status}) from {version.path}, sha256 {version.sha256[:12]}…"
            )
        )
        if version.is_calibrated:
            self.stdout.write(
                f"  threshold {version.threshold:.4f} ({version.threshold_method.get('method')}, "
                f"on {version.threshold_method.get('on', 'validation data')})"
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"  {version.version} is NOT calibrated: it cannot take traffic until you run\n"
                    f"  manage.py calibrate_model --version {version.version} --data-dir <labelled folder>   "
                    "(or --reviews once it has run in shadow)"
                )
            )
        self.stdout.write(f"  Population of the model: {version.population or 'not stated'}\n  {population_note()}")
