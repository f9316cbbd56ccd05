"""Calibrate a model version's threshold for a target sensitivity, on a labelled folder or on reviewed studies."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from diagnosis.exceptions import ModelVersionError
from diagnosis.management.version_option import ModelVersionOptionCommand, version_or_command_error
from diagnosis.selectors.performance import population_note
from diagnosis.services.calibration import model_version_calibrate_on_folder, model_version_calibrate_on_reviews


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--version", required=True, help="A registered model version name.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--data-dir",
            help="Labelled folder with NORMAL/ and PNEUMONIA/ (or val/...); runs the "
            "model on every image (TensorFlow).",
        )
        source.add_argument(
            "--reviews",
            action="store_true",
            help="Use this version's predictions on studies radiologists reviewed (latest review).",
        )
        parser.add_argument(
            "--target-sensitivity",
            type=float,
            default=settings.PNEUMO_DEFAULT_TARGET_SENSITIVITY,
            help="Sensitivity the threshold must reach (default %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = version_or_command_error(options["version"])
        old = version.threshold if version.is_calibrated else None
        try:
            if options["reviews"]:
                version = model_version_calibrate_on_reviews(
                    model_version=version, target_sensitivity=options["target_sensitivity"]
                )
            else:
                version = model_version_calibrate_on_folder(
                    model_version=version,
                    data_dir=options["data_dir"],
                    target_sensitivity=options["target_sensitivity"],
                )
        except ModelVersionError as exc:
            raise CommandError(exc.message) from exc
        method = version.threshold_method
        before = f"{old:.4f}" if old is not None else "uncalibrated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{version.version}: threshold {before} -> {version.threshold:.4f} for a target sensitivity of "
                f"{method['target']:.0%} on {method['on']}"
            )
        )
        self.stdout.write(
            f"  n = {method['n']} ({method['n_positive']} pneumonia, {method['n_negative']} normal); at this threshold "
            f"sensitivity {method['achieved_sensitivity']:.3f}, specificity {method['specificity']:.3f}, "
            f"AUC {method['auc']:.3f} (measured on the same data: optimistic for new studies)\n"
            f"  Applies to predictions made from now on. Validated: {'yes' if version.validated else 'no'}.\n"
            f"  {population_note()}"
        )
