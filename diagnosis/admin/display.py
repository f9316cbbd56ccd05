"""How the model lifecycle pages show numbers and records: text only, no database access, no decisions."""

from __future__ import annotations

import math
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from diagnosis.models import ModelVersion, TrainingRun

METRIC_LABELS = {
    "auc_roc": "AUC-ROC",
    "auc": "AUC-ROC",
    "pr_auc": "PR-AUC",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision (PPV)",
    "accuracy": "Accuracy",
    "f1": "F1",
}
LIVE_RATES = (
    ("agreement", "Agreement with the radiologist"),
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("ppv", "PPV (precision)"),
    ("npv", "NPV"),
)
TRAINING_KEYS = ("selected_phase", "best_val_auc_during_training", "duration_s", "tensorflow", "keras", "note")
CONFIG_KEYS = (
    "image_size",
    "weights",
    "batch_size",
    "phase1_epochs",
    "phase2_epochs",
    "target_sensitivity",
    "seed",
    "data_dir",
)


def format_estimate(value: Any, ci: Any = None, *, digits: int = 3) -> str:
    """0.953 and (0.93, 0.97) → "0.953 (95% CI 0.930–0.970)"; "—" when there is no value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{float(value):.{digits}f}"
    if ci is not None and len(ci) == 2 and None not in ci:
        text += f" (95% CI {float(ci[0]):.{digits}f}–{float(ci[1]):.{digits}f})"
    return text


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def metric_rows(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows "label → value (95% CI …)" of an ``EvaluationReport.to_dict()`` (or ``{name: {value, ci95}}``)."""
    if not metrics:
        return []
    ci95 = metrics.get("ci95")
    if not isinstance(ci95, dict):
        ci95 = {}
    rows = []
    for key, label in METRIC_LABELS.items():
        if isinstance(metrics.get(key), (int, float)):
            rows.append((label, format_estimate(metrics[key], ci95.get(key))))
    for key, entry in metrics.items():  # the compact form {"auc": {"value": 0.95, "ci95": [..]}}
        if isinstance(entry, dict) and "value" in entry:
            rows.append((METRIC_LABELS.get(key, key.upper()), format_estimate(entry["value"], entry.get("ci95"))))
    return rows


def metric_counts(metrics: dict[str, Any] | None) -> str:
    if not metrics or "n" not in metrics:
        return ""
    return f"n = {metrics['n']} ({metrics.get('n_positive', '?')} pneumonia, {metrics.get('n_negative', '?')} normal)"


def plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items())
    return "—" if value is None or value == "" else str(value)


def key_values(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(key).replace("_", " "), plain(value)) for key, value in (data or {}).items()]


#: Why an uncalibrated version serves at all: the one exception of ``model_version_activate`` (the demo model).
UNCALIBRATED_SERVING_NOTE = (
    'it serves only as the untrained demo model, the one exception to "no traffic without a calibrated threshold" '
    "(not validated: its findings are meaningless)"
)


def threshold_text(version: ModelVersion) -> str:
    """How the threshold was chosen, in one sentence an admin can check."""
    method = version.threshold_method or {}
    if not version.is_calibrated and version.is_serving:
        return (
            f"Never calibrated: {UNCALIBRATED_SERVING_NOTE}. Activate or give traffic to a calibrated version to "
            "replace it; once it stops serving, it cannot take traffic again until its threshold is calibrated."
        )
    if not version.is_calibrated:
        return "Never calibrated: this version cannot take traffic until its threshold is calibrated."
    if method.get("method") == "target_sensitivity":
        where = method.get("on", "validation data")
        source = method.get("val_source") or ""
        n = method.get("n")
        text = f"Chosen for a target sensitivity of {float(method.get('target', 0)) * 100:g}% on {where}"
        text += f" ({source})" if source else ""
        text += f", n = {n}" if n else ""
        achieved = method.get("achieved_sensitivity")
        if achieved is not None:
            text += f"; achieved sensitivity {float(achieved):.3f}"
            if method.get("achieved_specificity") is not None:
                text += f", specificity {float(method['achieved_specificity']):.3f}"
        return text + "."
    return f"Method: {plain(method)}." if method else "Calibrated (method not recorded)."


def training_summary(version: ModelVersion) -> list[tuple[str, str]]:
    manifest = version.manifest or {}
    training = manifest.get("training") or {}
    config = training.get("config") or {}
    rows = [(f"config: {key.replace('_', ' ')}", plain(config[key])) for key in CONFIG_KEYS if key in config]
    rows += [(key.replace("_", " "), plain(training[key])) for key in TRAINING_KEYS if key in training]
    if (version.dataset or {}).get("splits"):
        rows.append(("dataset splits", plain(version.dataset["splits"])))
    for key in ("created", "code_revision"):
        if manifest.get(key):
            rows.append((key.replace("_", " "), str(manifest[key])))
    rows.append(("weights sha256", version.sha256))
    return rows


# --- Live performance and drift (figures from diagnosis.selectors.performance) ---------------------------------------


def live_rows(live: dict[str, Any]) -> list[dict[str, str]]:
    """The rates of ``version_live_performance`` as display rows: name, value (95% CI …), k/n."""
    rows = []
    for key, label in LIVE_RATES:
        rate = live[key]
        text = format_estimate(rate["value"], rate["ci95"])
        value, _, ci = text.partition(" ")
        rows.append(
            {"key": key, "label": label, "text": text, "value": value, "ci": ci, "counts": f"{rate['k']}/{rate['n']}"}
        )
    return rows


def live_rates_shown(live: dict[str, Any], min_n: int) -> bool:
    """Rates and AUC from fewer reviewed studies than ``min_n`` (PNEUMO_LIVE_METRICS_MIN_N) are noise: not shown."""
    return bool(live["n_reviewed"]) and live["n_reviewed"] >= min_n


def too_few_text(live: dict[str, Any], min_n: int) -> str:
    return f"too few reviewed studies (n = {live['n_reviewed']}; shown from n = {min_n})"


def live_agreement_text(live: dict[str, Any], min_n: int) -> str:
    agreement = live["agreement"]
    if not agreement["n"]:
        return "—"
    if not live_rates_shown(live, min_n):
        return too_few_text(live, min_n)
    return f"{agreement['value']:.3f} (n = {agreement['n']})"


def share_text(version: ModelVersion) -> str:
    """The changelist's traffic cell: the share of a serving version, saying so when it is the uncalibrated demo."""
    if version.status != ModelVersion.Status.ACTIVE:
        return "—"
    if version.is_serving and not version.is_calibrated:
        return f"{version.traffic_share} % (untrained demo, uncalibrated)"
    return f"{version.traffic_share} %"


def drift_cell(drift: dict[str, Any]) -> str | SafeString:
    if drift["drifted"]:
        return format_html(
            '<span class="lifecycle-badge lifecycle-badge--drift" title="{}">drift: PSI {} &gt; {}</span>',
            drift["message"],
            f"{drift['latest_psi']:.2f}",
            f"{drift['limit']:.2f}",
        )
    return "—" if drift["latest_psi"] is None else f"PSI {drift['latest_psi']:.2f}"


def drift_windows(drift: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            **w,
            "start_date": w["start"][:10],
            "end_date": w["end"][:10],
            "psi_text": "—" if w["psi"] is None else f"{w['psi']:.3f}",
            "mean_text": f"{w['mean_score']:.3f}",
        }
        for w in drift["windows"]
    ]


# --- Training runs --------------------------------------------------------------------------------------------------


def training_progress_text(run: TrainingRun) -> str:
    if run.status == TrainingRun.Status.QUEUED:
        return "waiting for the training worker"
    if run.epoch is None:
        return "preparing data" if run.status == TrainingRun.Status.RUNNING else "—"
    return f"phase {run.phase}/2, epoch {run.epoch}/{run.epochs}"


def progress_percent(run: TrainingRun) -> int:
    if run.status == TrainingRun.Status.SUCCEEDED:
        return 100
    done = len(run.progress_log)
    total = run.phase1_epochs + run.phase2_epochs
    if run.phase == 2:  # phase 1 may have stopped early: the most it can still run is what is left of phase 2
        total = sum(1 for e in run.progress_log if e.get("phase") == 1) + run.phase2_epochs
    return min(99, round(100 * done / total)) if total else 0
