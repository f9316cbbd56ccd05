"""Evaluate a registered model version on any labelled folder: JSON report and plots."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError
from diagnosis.management.version_option import ModelVersionOptionCommand, version_or_command_error


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--version", required=True, help="A registered model version name.")
        parser.add_argument("--data-dir", required=True, help="Folder with NORMAL/ and PNEUMONIA/ (or test/…).")
        parser.add_argument("--output", default="", help="Report folder (default: <artifact>/evaluations/<name>).")
        parser.add_argument(
            "--threshold", type=float, default=None, help="Override the version's threshold for this report only."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = version_or_command_error(options["version"])
        data_dir = Path(options["data_dir"])
        if not data_dir.is_dir():
            raise CommandError(f"--data-dir {data_dir} is not a folder.")
        output = Path(options["output"] or Path(version.path) / "evaluations" / data_dir.resolve().name)
        threshold = options["threshold"] if options["threshold"] is not None else version.threshold
        try:
            report = ml.evaluate_folder(version.path, data_dir, output, threshold=threshold)
        except ModelVersionError as exc:
            raise CommandError(exc.message) from exc
        ci = report.ci95
        self.stdout.write(
            f"{version.version} on {data_dir} "
            f"(n={report.n}; {report.n_positive} pneumonia, {report.n_negative} normal)\n"
            f"  AUC-ROC {report.auc_roc:.3f} (95% CI {ci['auc_roc'][0]:.3f}–{ci['auc_roc'][1]:.3f}), "
            f"PR-AUC {report.pr_auc:.3f}\n"
            f"  at threshold {report.threshold:.4f}: sensitivity {report.sensitivity:.3f}, "
            f"specificity {report.specificity:.3f}, precision {report.precision:.3f}, F1 {report.f1:.3f}, "
            f"accuracy {report.accuracy:.3f}\n"
            f"  Population of the model: {version.population or 'not stated'}"
        )
        self.stdout.write(self.style.SUCCESS(f"Report and plots written to {output}"))
