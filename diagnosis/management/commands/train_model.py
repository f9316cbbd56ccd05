"""Train the ResNet50 pneumonia classifier (two phases), evaluate it and register it as a model version."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from diagnosis import ml
from diagnosis.management.version_option import ModelVersionOptionCommand
from diagnosis.exceptions import ModelVersionError
from diagnosis.services.model_versions import model_version_activate, model_version_register


def weights_argument(value: str) -> str | None:
    """``imagenet`` | ``none`` | a local weights file (Keras cannot download ImageNet weights without internet)."""
    if value.lower() == "none":
        return None
    if value.lower() == "imagenet":
        return "imagenet"
    if not Path(value).is_file():
        raise CommandError(f"--weights: no such file {value!r}. Use imagenet, none or a path to a weights file.")
    return str(Path(value).resolve())


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--data-dir", required=True, help="Folder with train/[val/][test/] × NORMAL/PNEUMONIA.")
        parser.add_argument("--image-size", type=int, default=384, help="Square input size in pixels (default 384).")
        parser.add_argument("--weights", default="imagenet", help="imagenet (default), none, or a local weights file.")
        parser.add_argument("--phase1-epochs", type=int, default=15, help="Max epochs with the base frozen (15).")
        parser.add_argument("--phase2-epochs", type=int, default=20, help="Max fine-tuning epochs, layers 100+ (20).")
        parser.add_argument("--batch-size", type=int, default=32, help="Batch size (32).")
        parser.add_argument("--target-sensitivity", type=float, default=0.95,
                            help="Operating threshold reaches this sensitivity on validation data (0.95).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed for splits, augmentation and weights.")
        parser.add_argument("--version", default="", help="Version name (default: a timestamp).")
        parser.add_argument("--output", default="",
                            help="Folder that receives the artifact folder <version>/ (default: PNEUMO_MODEL_DIR).")
        parser.add_argument("--activate", action="store_true", help="Make the new version the active one.")

    def handle(self, *args: Any, **options: Any) -> None:
        from mlcore.training import train
        from mlcore.training_config import TrainConfig

        data_dir = Path(options["data_dir"])
        if not (data_dir / "train").is_dir():
            raise CommandError(f"--data-dir {data_dir} has no train/ folder (expected train/NORMAL, train/PNEUMONIA).")
        if not 0.5 <= options["target_sensitivity"] < 1.0:
            raise CommandError("--target-sensitivity must be in [0.5, 1).")
        version = options["version"] or timezone.now().strftime("v%Y%m%d-%H%M%S")
        output = Path(options["output"]) if options["output"] else ml.model_storage_dir()
        if (output / version).exists():
            raise CommandError(f"{output / version} already exists; choose another --version.")
        config = TrainConfig(
            data_dir=str(data_dir.resolve()), output_dir=str(output.resolve()), image_size=options["image_size"],
            weights=weights_argument(options["weights"]), batch_size=options["batch_size"],
            phase1_epochs=options["phase1_epochs"], phase2_epochs=options["phase2_epochs"],
            target_sensitivity=options["target_sensitivity"], seed=options["seed"], version=version,
        )
        try:
            result = train(config, progress=self._report_progress)
        except (ValueError, RuntimeError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Validation data: {result.manifest.dataset.get('val_source', 'val folder')}")
        self._print_summary(result)
        try:
            model_version = model_version_register(path=result.artifact_dir, version=version)
            if options["activate"]:
                model_version_activate(model_version=model_version)
        except ModelVersionError as exc:
            raise CommandError(exc.message) from exc
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
            f"Validation (pediatric Kermany data, ages 1–5): AUC {val.auc_roc:.3f}, threshold {val.threshold:.4f} → "
            f"sensitivity {val.sensitivity:.3f}, specificity {val.specificity:.3f} (n={val.n})"
        )
        if result.test is not None:
            test = result.test
            self.stdout.write(
                f"Test: AUC {test.auc_roc:.3f}, sensitivity {test.sensitivity:.3f}, "
                f"specificity {test.specificity:.3f} (n={test.n})"
            )
