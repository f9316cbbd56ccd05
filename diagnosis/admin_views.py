"""Custom Django admin views of the model lifecycle: version pages and actions, traffic, A/B report, training runs.

Each view parses input, calls ONE service or selector with ``actor=request.user, request=request`` (the service
writes the audit event), and renders. A refused action (``ModelVersionError``, ``InvalidInputError``) is shown as
an admin message; nothing here decides clinical policy. The web process never imports TensorFlow: calibration on
a labelled folder and training are Celery tasks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from diagnosis.exceptions import ApplicationError, InvalidInputError
from diagnosis.models import AuditEvent, ModelVersion, Study, TrainingRun
from diagnosis.services import model_versions as versions
from diagnosis.services.studies import study_record_view
from diagnosis.services.training_runs import training_run_create, training_run_request_cancel

PLOTS_FOLDER = "plots"
_PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.png$")
METRIC_LABELS = {
    "auc_roc": "AUC-ROC", "pr_auc": "PR-AUC", "sensitivity": "Sensitivity", "specificity": "Specificity",
    "precision": "Precision (PPV)", "accuracy": "Accuracy", "f1": "F1",
}
REFRESH_SECONDS = 5


# --- Formatting -------------------------------------------------------------------------------------------------

def population_note() -> str:
    return str(getattr(settings, "PNEUMO_POPULATION_NOTE", ""))


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
    ci95 = metrics.get("ci95") if isinstance(metrics.get("ci95"), dict) else {}
    rows = []
    for key, label in METRIC_LABELS.items():
        if isinstance(metrics.get(key), (int, float)):
            rows.append((label, format_estimate(metrics[key], ci95.get(key))))
    for key, entry in metrics.items():  # the compact form {"auc": {"value": 0.95, "ci95": [..]}}
        if isinstance(entry, dict) and "value" in entry:
            rows.append((METRIC_LABELS.get(key, key.replace("_", " ").upper() if len(key) <= 4 else key),
                         format_estimate(entry["value"], entry.get("ci95"))))
    return rows


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "—" if value is None or value == "" else str(value)


def key_values(data: dict[str, Any] | None, *, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(str(key).replace("_", " "), _plain(value)) for key, value in (data or {}).items() if key not in skip]


def threshold_text(version: ModelVersion) -> str:
    """How the threshold was chosen, in one sentence an admin can check."""
    method = version.threshold_method or {}
    if not version.is_calibrated:
        return "Never calibrated: this version cannot take traffic until its threshold is calibrated."
    if method.get("method") == "target_sensitivity":
        where = method.get("on", "validation data")
        source = method.get("data_dir") or method.get("val_source") or ""
        n = method.get("n")
        text = f"Chosen for a target sensitivity of {float(method.get('target', 0)):.0%} on {where}"
        text += f" ({source})" if source else ""
        text += f", n = {n}" if n else ""
        achieved = method.get("achieved_sensitivity")
        if achieved is not None:
            text += f"; achieved sensitivity {float(achieved):.3f}"
            if method.get("achieved_specificity") is not None:
                text += f", specificity {float(method['achieved_specificity']):.3f}"
        return text + "."
    return f"Method: {_plain(method)}." if method else "Calibrated (method not recorded)."


# --- Plots ------------------------------------------------------------------------------------------------------

def artifact_plot_names(version: ModelVersion) -> list[str]:
    """The PNG files in ``<artifact>/plots/``: the only names the plot view will serve."""
    folder = Path(version.path) / PLOTS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if _PLOT_NAME.match(p.name) and p.is_file() and not p.is_symlink())


def model_version_plot_view(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int, name: str) -> HttpResponse:
    """Stream one evaluation plot of a version's artifact (admin only; names whitelisted from the folder)."""
    version = get_object_or_404(ModelVersion, pk=pk)
    if not model_admin.has_view_permission(request, version):
        raise PermissionDenied
    # Only a name listed in the folder is served: "../", absolute paths and symlinks never reach the filesystem.
    if name not in artifact_plot_names(version):
        raise Http404("No such plot.")
    response = FileResponse((Path(version.path) / PLOTS_FOLDER / name).open("rb"), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=300"
    return response


# --- Shared -----------------------------------------------------------------------------------------------------

def _context(request: HttpRequest, model_admin: admin.ModelAdmin, title: str, **extra: Any) -> dict[str, Any]:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "title": title,
            "population_note": population_note(), **extra}


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _audit_trail(subject_type: str, subject_id: str, limit: int = 20) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(subject_type=subject_type, subject_id=subject_id).order_by("-id")[:limit])


# --- Training runs ----------------------------------------------------------------------------------------------

class TrainingRunForm(forms.Form):
    data_dir = forms.CharField(
        label="Data folder", max_length=500,
        help_text="Absolute path on the training worker with train/ (and optionally val/, test/), "
                  "each holding NORMAL/ and PNEUMONIA/.")
    image_size = forms.IntegerField(label="Image size (px)", initial=384, min_value=32, max_value=1024)
    weights = forms.CharField(
        label="Base weights", initial="imagenet", max_length=500,
        help_text="imagenet, none (random), or the path of a local ResNet50 no-top weights file "
                  "(a worker without internet cannot download ImageNet weights).")
    phase1_epochs = forms.IntegerField(label="Phase 1 epochs (base frozen)", initial=15, min_value=1, max_value=500)
    phase2_epochs = forms.IntegerField(label="Phase 2 epochs (fine-tuning)", initial=20, min_value=0, max_value=500)
    batch_size = forms.IntegerField(initial=32, min_value=1, max_value=512)
    target_sensitivity = forms.FloatField(
        initial=0.95, min_value=0.5, max_value=0.999,
        help_text="The threshold is chosen on validation data to reach this sensitivity.")
    version = forms.CharField(required=False, max_length=100, help_text="Optional; default: a timestamp.")


def training_run_add_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    _require(model_admin.has_add_permission(request))
    form = TrainingRunForm(request.POST or None,
                           initial={"target_sensitivity": settings.PNEUMO_DEFAULT_TARGET_SENSITIVITY})
    if request.method == "POST" and form.is_valid():
        try:
            run = training_run_create(**form.cleaned_data, actor=request.user, request=request)
        except InvalidInputError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Training run {run.pk} queued (version {run.version}). It runs on the "
                                      "training queue and never delays screening.")
            return redirect("admin:diagnosis_trainingrun_change", run.pk)
    return TemplateResponse(request, "admin/diagnosis/trainingrun/add.html",
                            _context(request, model_admin, "Launch a training run", form=form))


def training_progress_text(run: TrainingRun) -> str:
    if run.status == TrainingRun.Status.QUEUED:
        return "waiting for the training worker"
    if run.epoch is None:
        return "preparing data" if run.status == TrainingRun.Status.RUNNING else "—"
    return f"phase {run.phase}/2, epoch {run.epoch}/{run.epochs}"


def _progress_percent(run: TrainingRun) -> int:
    if run.status == TrainingRun.Status.SUCCEEDED:
        return 100
    done = len(run.progress_log)
    total = run.phase1_epochs + run.phase2_epochs
    if run.phase == 2:  # phase 1 may have stopped early: the most it can still run is what is left of phase 2
        total = sum(1 for e in run.progress_log if e.get("phase") == 1) + run.phase2_epochs
    return min(99, round(100 * done / total)) if total else 0


def training_run_detail_view(request: HttpRequest, model_admin: admin.ModelAdmin, object_id: str) -> HttpResponse:
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    run = get_object_or_404(TrainingRun.objects.select_related("created_by", "model_version"),
                            pk=object_id if str(object_id).isdigit() else -1)
    _require(model_admin.has_view_permission(request, run))
    unfinished = run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    log = [{**entry, "val_auc_text": format_estimate(entry.get("val_auc")),
            "loss_text": "—" if entry.get("loss") is None else f"{entry['loss']:.4f}"}
           for entry in reversed(run.progress_log)]
    return TemplateResponse(request, "admin/diagnosis/trainingrun/detail.html", _context(
        request, model_admin, f"Training run {run.pk}", run=run, unfinished=unfinished,
        refresh_seconds=REFRESH_SECONDS if unfinished else None, progress_text=training_progress_text(run),
        percent=_progress_percent(run), eta=format_duration(run.eta_seconds) if run.eta_seconds else None,
        seconds_per_epoch=format_duration(run.seconds_per_epoch) if run.seconds_per_epoch else None,
        log=log, can_cancel=unfinished and not run.cancel_requested and model_admin.has_change_permission(request, run),
        audit_trail=_audit_trail("training_run", str(run.pk)),
    ))


@require_POST
def training_run_cancel_view(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    _require(model_admin.has_change_permission(request, run))
    before = run.status
    run = training_run_request_cancel(run=run, actor=request.user, request=request)
    if run.status == TrainingRun.Status.CANCELLED and before == TrainingRun.Status.QUEUED:
        messages.success(request, f"Training run {run.pk} cancelled before it started.")
    elif run.status == TrainingRun.Status.RUNNING:
        messages.success(request, f"Cancel requested: training run {run.pk} stops within a few seconds "
                                  "and saves no model.")
    else:
        messages.info(request, f"Training run {run.pk} had already ended ({run.get_status_display().lower()}).")
    return redirect("admin:diagnosis_trainingrun_change", run.pk)


# --- Clinical records -------------------------------------------------------------------------------------------

def study_record_admin_view(request: HttpRequest, object_id: str, response: HttpResponse) -> None:
    """Audit that a staff user opened a study's record in admin (patient data), as the dashboard does."""
    if request.method != "GET" or response.status_code != 200:
        return
    study = Study.objects.filter(pk=object_id).first() if _is_uuid(object_id) else None
    if study is not None:
        study_record_view(study=study, user=request.user, request=request)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- Live performance and drift (read through diagnosis.performance) ---------------------------------------------

def _performance() -> Any:
    from diagnosis import performance

    return performance


def live_agreement_text(version: ModelVersion) -> str:
    return "—"


def drift_cell(version: ModelVersion) -> str:
    return "—"


# --- Model versions -----------------------------------------------------------------------------------------------

def model_version_detail_view(request: HttpRequest, model_admin: admin.ModelAdmin, object_id: str) -> HttpResponse:
    raise Http404


def model_version_register_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    raise Http404


def model_version_traffic_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    raise Http404


def ab_report_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    raise Http404


def model_version_action_view(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int,
                              action: str) -> HttpResponse:
    raise Http404
