"""Register and activate an UNTRAINED demo model, clearly marked not validated, so the workflow can be tried."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from diagnosis import ml
from diagnosis.management.version_option import ModelVersionOptionCommand
from diagnosis.selectors.model_versions import model_version_names
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import model_version_activate

DEMO_VERSION = "demo-untrained"


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--if-none", action="store_true", help="Do nothing when any model version exists.")
        parser.add_argument("--image-size", type=int, default=224, help="Input size of the demo model (224).")
        parser.add_argument("--version", default=DEMO_VERSION, help=f"Version name ({DEMO_VERSION}).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_none"] and model_version_names():
            self.stdout.write("A model version is already registered; no demo model created.")
            return
        output = ml.model_storage_dir() / options["version"]
        if not (output / "manifest.json").exists():
            self.stdout.write(f"Building an untrained ResNet50 demo model ({options['image_size']} px)...")
            ml.create_demo_artifact(output, image_size=options["image_size"], version=options["version"])
        version = model_version_register(
            path=output, version=options["version"], notes="Untrained demo model: NOT VALIDATED, not for clinical use."
        )
        model_version_activate(model_version=version, allow_unvalidated=True)
        self.stdout.write(
            self.style.WARNING(
                f"Demo model {version.version} is active. Its predictions are meaningless (untrained) and every screen "
                "says so. Train a real model with `python manage.py train_model --activate`."
            )
        )
