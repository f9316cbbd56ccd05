"""Train the ResNet50 pneumonia classifier (two phases), evaluate it and register it as a model version."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from diagnosis.exceptions import InvalidInputError, ModelVersionError
from diagnosis.management.version_option import ModelVersionOptionCommand
from diagnosis.services.training import model_version_train, training_options_clean


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--data-dir", required=True, help="Folder with train/[val/][test/] × NORMAL/PNEUMONIA.")
        parser.add_argument("--image-size", type=int, default=384, help="Square input size in pixels (default 384).")
        parser.add_argument("--weights", default="imagenet", help="imagenet (default), none, or a local weights file.")
        parser.add_argument("--phase1-epochs", type=int, default=15, help="Max epochs with the base frozen (15).")
        parser.add_argument("--phase2-epochs", type=int, default=20, help="Max fine-tuning epochs, layers 100+ (20).")
        parser.add_argument("--batch-size", type=int, default=32, help="Batch size (32).")
        parser.add_argument(
            "--target-sensitivity",
            type=float,
            default=0.95,
            help="Operating threshold reaches this sensitivity on validation data (0.95).",
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed for splits, augmentation and weights.")
        parser.add_argument("--version", default="", help="Version name (default: a timestamp).")
        parser.add_argument(
            "--output",
            default="",
            help="Folder that receives the artifact folder <version>/ (default: PNEUMO_MODEL_DIR).",
        )
        parser.add_argument("--activate", action="store_true", help="Make the new version the active one.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            training = training_options_clean(
                data_dir=str(Path(options["data_dir"]).resolve()),
                image_size=options["image_size"],
                weights=options["weights"],
                phase1_epochs=options["phase1_epochs"],
                phase2_epochs=options["phase2_epochs"],
                batch_size=options["batch_size"],
                target_sensitivity=options["target_sensitivity"],
                version=options["version"],
                output_dir=options["output"] or None,
                seed=options["seed"],
            )
            model_version, result = model_version_train(
                options=training, activate=options["activate"], progress=self._report_progress
            )
        except (InvalidInputError, ModelVersionError) as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Validation data: {result.manifest.dataset.get('val_source', 'val folder')}")
        self._print_summary(result)
        state = "registered and activated" if options["activate"] else "registered"
        self.stdout.write(self.style.SUCCESS(f"Model version {model_version.version} {state}: {result.artifact_dir}"))

    def _report_progress(self, p: Any) -> None:
        val_auc = "n/a" if p.val_auc is None else f"{p.val_auc:.3f}"
        loss = "n/a" if p.loss is None else f"{p.loss:.4f}"
        self.stdout.write(
            f"[{p.phase_name}] epoch {p.epoch}/{p.epochs}: loss {loss}, val AUC {val_auc} "
            f"({p.seconds_per_epoch:.0f} s, {p.images_per_second:.1f} img/s; at most "
            f"{p.eta_seconds / 60:.0f} min left)"
        )
        self.stdout.flush()

    def _print_summary(self, result: Any) -> None:
        val = result.validation
        self.stdout.write(
            # The population the manifest records (the Kermany data is pediatric, ages 1-5), not an assumption.
            f"Validation ({result.manifest.population}): AUC {val.auc_roc:.3f}, threshold {val.threshold:.4f} → "
            f"sensitivity {val.sensitivity:.3f}, specificity {val.specificity:.3f} (n={val.n})"
        )
        if result.test is not None:
            test = result.test
            self.stdout.write(
                f"Test: AUC {test.auc_roc:.3f}, sensitivity {test.sensitivity:.3f}, "
                f"specificity {test.specificity:.3f} (n={test.n})"
            )
