"""Live performance of model versions on radiologist-reviewed studies, side by side, with score-drift warnings."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from diagnosis.management.version_option import ModelVersionOptionCommand, version_or_command_error
from diagnosis.selectors.performance import ab_report

RATES = (
    ("agreement", "agreement"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
    ("ppv", "PPV"),
    ("npv", "NPV"),
)


def format_rate(rate: dict[str, Any]) -> str:
    """``0.85 (0.71–0.93) 17/20`` or ``— 0/0``."""
    if rate["value"] is None:
        return f"— ({rate['k']}/{rate['n']})"
    low, high = rate["ci95"]
    return f"{rate['value']:.2f} ({low:.2f}–{high:.2f}) {rate['k']}/{rate['n']}"


class Command(ModelVersionOptionCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--version",
            action="append",
            default=None,
            dest="versions",
            help="A version to include (repeat it); default: the serving then the shadow versions.",
        )
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        versions = None
        if options["versions"]:
            versions = [version_or_command_error(name) for name in dict.fromkeys(options["versions"])]
        report = ab_report(versions=versions)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        self._print(report)

    def _print(self, report: dict[str, Any]) -> None:
        write = self.stdout.write
        if not report["versions"]:
            write("No serving or shadow model version to report on.")
        write("Live performance on radiologist-reviewed studies (truth = latest review; 95 % Wilson intervals)")
        for perf in report["versions"]:
            share = f" {perf['traffic_share']} %" if perf["role"] == "serving" else ""
            auc = f"{perf['auc']:.3f}" if perf["auc"] is not None else "— (needs both findings)"
            write(
                f"\n{perf['version']} [{perf['role']}{share}], threshold {perf['threshold']:.4f}"
                f"{'' if perf['calibrated'] else ' (UNCALIBRATED)'}{'' if perf['validated'] else ', NOT VALIDATED'}"
            )
            write(
                f"  reviewed studies: {perf['n_reviewed']} ({perf['n_positive']} pneumonia, "
                f"{perf['n_negative']} normal); AUC {auc}"
            )
            # Reviews that make no pneumonia call are in no rate: say how many, so none disappears unseen.
            write(f"  {perf['excluded_text']}")
            for key, label in RATES:
                write(f"  {label:<12} {format_rate(perf[key])}")
        if report["pairs"]:
            write("\nComparisons on the same reviewed studies (McNemar exact test, 5 % level):")
            for pair in report["pairs"]:
                write(f"  - {pair['statement']}")
        if report["drift"]:
            write("\nScore drift (PSI of live scores vs validation scores):")
            for drift in report["drift"]:
                message = drift["message"]
                write("  " + (self.style.WARNING(message) if drift["drifted"] else message))
        write("\nCaveats:")
        for caveat in report["caveats"]:
            write(f"  * {caveat}")
