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
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from diagnosis import performance
from diagnosis.exceptions import InvalidInputError, ModelVersionError
from diagnosis.lifecycle_tasks import model_version_calibrate_on_folder_task, model_version_register_task
from diagnosis.models import AuditEvent, ModelVersion, Study, TrainingRun
from diagnosis.services import model_versions as versions
from diagnosis.services.studies import study_record_view
from diagnosis.services.training_runs import training_run_create, training_run_request_cancel

PLOTS_FOLDER = "plots"
_PLOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.png$")
METRIC_LABELS = {
    "auc_roc": "AUC-ROC", "auc": "AUC-ROC", "pr_auc": "PR-AUC", "sensitivity": "Sensitivity",
    "specificity": "Specificity", "precision": "Precision (PPV)", "accuracy": "Accuracy", "f1": "F1",
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
            rows.append((METRIC_LABELS.get(key, key.upper()), format_estimate(entry["value"], entry.get("ci95"))))
    return rows


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "—" if value is None or value == "" else str(value)


def key_values(data: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(str(key).replace("_", " "), _plain(value)) for key, value in (data or {}).items()]


def threshold_text(version: ModelVersion) -> str:
    """How the threshold was chosen, in one sentence an admin can check."""
    method = version.threshold_method or {}
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
    events = Q(subject_type=subject_type, subject_id=subject_id)
    if subject_type == "model_version":  # traffic changes are one event for all versions: show those naming it
        events |= Q(subject_type="model_traffic") & (Q(details__new__has_key=subject_id)
                                                     | Q(details__old__has_key=subject_id))
    return list(AuditEvent.objects.filter(events).order_by("-id")[:limit])


# --- Training runs ----------------------------------------------------------------------------------------------

class TrainingRunForm(forms.Form):
    data_dir = forms.CharField(
        label="Data folder", max_length=500, widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="Absolute path on the training worker with train/ (and optionally val/, test/), "
                  "each holding NORMAL/ and PNEUMONIA/.")
    image_size = forms.IntegerField(label="Image size (px)", initial=384, min_value=32, max_value=1024)
    weights = forms.CharField(
        label="Base weights", initial="imagenet", max_length=500,
        widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
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
            "loss_text": "—" if entry.get("loss") is None else f"{entry['loss']:.4f}",
            "time_text": format_duration(entry.get("seconds")), "at_time": parse_datetime(entry.get("at") or "") or "—"}
           for entry in reversed(run.progress_log)]
    return TemplateResponse(request, "admin/diagnosis/trainingrun/detail.html", _context(
        request, model_admin, f"Training run {run.pk}", run=run, unfinished=unfinished,
        refresh_seconds=REFRESH_SECONDS if unfinished else None, progress_text=training_progress_text(run),
        percent=_progress_percent(run), eta=format_duration(run.eta_seconds) if run.eta_seconds else None,
        seconds_per_epoch=format_duration(run.seconds_per_epoch) if run.seconds_per_epoch else None,
        log=log, can_change=unfinished and model_admin.has_change_permission(request, run),
        audit_trail=_audit_trail("training_run", str(run.pk)),
    ))


@require_POST
def training_run_cancel_view(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    _require(model_admin.has_change_permission(request, run))
    before = run.status
    run = training_run_request_cancel(run=run, actor=request.user, request=request,
                                      force=request.POST.get("force") == "1")
    if run.status == TrainingRun.Status.CANCELLED and before == TrainingRun.Status.QUEUED:
        messages.success(request, f"Training run {run.pk} cancelled before it started.")
    elif run.status == TrainingRun.Status.CANCELLED and before == TrainingRun.Status.RUNNING:
        messages.warning(request, f"Training run {run.pk} marked cancelled.")
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

LIVE_RATES = (("agreement", "Agreement with the radiologist"), ("sensitivity", "Sensitivity"),
              ("specificity", "Specificity"), ("ppv", "PPV (precision)"), ("npv", "NPV"))


def live_rows(live: dict[str, Any]) -> list[dict[str, str]]:
    """The rates of ``performance.version_live_performance`` as display rows: name, value (95% CI …), k/n."""
    rows = []
    for key, label in LIVE_RATES:
        rate = live[key]
        text = format_estimate(rate["value"], rate["ci95"])
        value, _, ci = text.partition(" ")
        rows.append({"key": key, "label": label, "text": text, "value": value, "ci": ci,
                     "counts": f"{rate['k']}/{rate['n']}"})
    return rows


def live_agreement_text(version: ModelVersion) -> str:
    agreement = performance.version_live_performance(model_version=version)["agreement"]
    if not agreement["n"]:
        return "—"
    return f"{agreement['value']:.3f} (n = {agreement['n']})"


def drift_cell(version: ModelVersion) -> str:
    drift = performance.score_drift(model_version=version)
    if drift["drifted"]:
        return format_html('<span class="lifecycle-badge lifecycle-badge--drift" title="{}">drift: PSI {} &gt; {}'
                           "</span>", drift["message"], f"{drift['latest_psi']:.2f}", f"{drift['limit']:.2f}")
    return "—" if drift["latest_psi"] is None else f"PSI {drift['latest_psi']:.2f}"


def _drift_windows(drift: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**w, "start_date": w["start"][:10], "end_date": w["end"][:10],
             "psi_text": "—" if w["psi"] is None else f"{w['psi']:.3f}", "mean_text": f"{w['mean_score']:.3f}"}
            for w in drift["windows"]]


# --- Model versions -----------------------------------------------------------------------------------------------

TRAINING_KEYS = ("selected_phase", "best_val_auc_during_training", "duration_s", "tensorflow", "keras", "note")
CONFIG_KEYS = ("image_size", "weights", "batch_size", "phase1_epochs", "phase2_epochs", "target_sensitivity",
               "seed", "data_dir")


def _training_summary(version: ModelVersion) -> list[tuple[str, str]]:
    manifest = version.manifest or {}
    training = manifest.get("training") or {}
    config = training.get("config") or {}
    rows = [(f"config: {key.replace('_', ' ')}", _plain(config[key])) for key in CONFIG_KEYS if key in config]
    rows += [(key.replace("_", " "), _plain(training[key])) for key in TRAINING_KEYS if key in training]
    if (version.dataset or {}).get("splits"):
        rows.append(("dataset splits", _plain(version.dataset["splits"])))
    for key in ("created", "code_revision"):
        if manifest.get(key):
            rows.append((key.replace("_", " "), str(manifest[key])))
    rows.append(("weights sha256", version.sha256))
    return rows


def model_version_detail_view(request: HttpRequest, model_admin: admin.ModelAdmin, object_id: str) -> HttpResponse:
    """A version's page: everything about it, read-only, with its lifecycle actions (each a POST form)."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    version = get_object_or_404(ModelVersion, pk=object_id if str(object_id).isdigit() else -1)
    _require(model_admin.has_view_permission(request, version))
    live = performance.version_live_performance(model_version=version)
    drift = performance.score_drift(model_version=version)
    plots = [{"name": name, "url": reverse("admin:diagnosis_modelversion_plot", args=[version.pk, name])}
             for name in artifact_plot_names(version)]
    return TemplateResponse(request, "admin/diagnosis/modelversion/detail.html", _context(
        request, model_admin, f"Model version {version.version}", version=version,
        threshold_text=threshold_text(version), threshold_method=key_values(version.threshold_method),
        preprocessing=key_values(version.preprocessing), training_summary=_training_summary(version),
        validation_metrics=metric_rows(version.metrics), test_metrics=metric_rows(version.test_metrics),
        validation_n=_counts(version.metrics), test_n=_counts(version.test_metrics),
        live=live, live_rows=live_rows(live), live_auc=format_estimate(live["auc"]),
        caveats=performance.PERFORMANCE_CAVEATS, drift=drift, drift_windows=_drift_windows(drift), plots=plots,
        training_runs=version.training_runs.order_by("-created_at"),
        can_change=model_admin.has_change_permission(request, version),
        default_target=settings.PNEUMO_DEFAULT_TARGET_SENSITIVITY,
        audit_trail=_audit_trail("model_version", version.version),
    ))


def _counts(metrics: dict[str, Any] | None) -> str:
    if not metrics or "n" not in metrics:
        return ""
    return f"n = {metrics['n']} ({metrics.get('n_positive', '?')} pneumonia, {metrics.get('n_negative', '?')} normal)"


def _target(request: HttpRequest) -> float:
    try:
        target = float(request.POST.get("target_sensitivity", ""))
    except ValueError:
        raise ModelVersionError("The target sensitivity must be a number such as 0.95.") from None
    if not 0.5 <= target < 1.0:
        raise ModelVersionError(f"The target sensitivity must be in [0.5, 1). Received: {target}")
    return target


def _calibrate_on_folder(request: HttpRequest, version: ModelVersion) -> str:
    data_dir = request.POST.get("data_dir", "").strip()
    if not data_dir or not Path(data_dir).is_absolute():
        raise ModelVersionError("Give the absolute path of a labelled folder (NORMAL/ and PNEUMONIA/ inside).")
    target = _target(request)
    # Scoring a folder needs TensorFlow: a worker of the training queue does it and audits the result.
    model_version_calibrate_on_folder_task.delay(version.pk, data_dir, target, request.user.pk)
    return (f"Calibration of {version.version} on {data_dir} (target sensitivity {target:.2f}) queued on the training "
            "worker; the new threshold appears here (and in the audit log) when it is done.")


def _run_action(request: HttpRequest, version: ModelVersion, action: str) -> str:
    actor = {"actor": request.user, "request": request}
    if action == "shadow":
        versions.model_version_set_shadow(model_version=version, **actor)
        return f"{version.version} now runs in shadow on every new study; its output is stored, never shown."
    if action == "activate":
        allow = request.POST.get("allow_unvalidated") == "on"
        versions.model_version_activate(model_version=version, allow_unvalidated=allow, **actor)
        return f"{version.version} is active and serves 100 % of new studies."
    if action == "retire":
        versions.model_version_retire(model_version=version, **actor)
        return f"{version.version} is retired."
    if action == "calibrate-reviews":
        target = _target(request)
        version = versions.model_version_calibrate_on_reviews(model_version=version, target_sensitivity=target,
                                                              **actor)
        return (f"{version.version} calibrated on this hospital's reviewed studies: threshold "
                f"{version.threshold:.4f} for a target sensitivity of {target:.2f}.")
    if action == "calibrate-folder":
        return _calibrate_on_folder(request, version)
    raise Http404("No such action.")


@require_POST
def model_version_action_view(request: HttpRequest, model_admin: admin.ModelAdmin, pk: int,
                              action: str) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    _require(model_admin.has_change_permission(request, version))
    try:
        messages.success(request, _run_action(request, version, action))
    except ModelVersionError as exc:
        messages.error(request, exc.message)
    return redirect("admin:diagnosis_modelversion_change", version.pk)


class RegisterForm(forms.Form):
    path = forms.CharField(
        max_length=500, label="Artifact path", widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="Absolute path of an artifact folder (model.keras + manifest.json) or of a notebook .h5 file.")
    version = forms.CharField(max_length=100, required=False,
                              help_text="Optional; default: the version in the manifest (or the .h5 file name).")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "lifecycle-path"}))


def model_version_register_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    """Register an artifact from a path: a folder now (its sha256 is checked), a notebook .h5 on a worker."""
    _require(model_admin.has_change_permission(request))
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        path, name, notes = form.cleaned_data["path"].strip(), form.cleaned_data["version"].strip(), \
            form.cleaned_data["notes"]
        if not Path(path).is_absolute():
            form.add_error("path", "Give an absolute path.")
        elif versions.model_version_is_h5_path(path):
            # Wrapping a .h5 loads it with Keras: TensorFlow, so a worker does it and audits the outcome.
            model_version_register_task.delay(path, name or None, notes, request.user.pk)
            messages.success(request, f"Import of {Path(path).name} queued on the training worker; the version "
                                      "appears in this list (uncalibrated) when it is done.")
            return redirect("admin:diagnosis_modelversion_changelist")
        else:
            try:
                version = versions.model_version_register(path=path, version=name or None, notes=notes,
                                                          actor=request.user, request=request)
            except ModelVersionError as exc:
                form.add_error(None, exc.message)
            else:
                state = "calibrated" if version.is_calibrated else "NOT calibrated (it cannot take traffic yet)"
                messages.success(request, f"Registered {version.version} (sha256 {version.sha256[:12]}…); "
                                          f"threshold {state}.")
                return redirect("admin:diagnosis_modelversion_change", version.pk)
    return TemplateResponse(request, "admin/diagnosis/modelversion/register.html",
                            _context(request, model_admin, "Register a model artifact", form=form))


def model_version_traffic_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    """One share per calibrated, non-retired version; shares of the serving versions must add up to 100 %."""
    _require(model_admin.has_change_permission(request))
    candidates = list(ModelVersion.objects.exclude(status=ModelVersion.Status.RETIRED).order_by("-created_at"))
    eligible = [v for v in candidates if v.is_calibrated]
    values: dict[str, str] = {v.version: str(v.traffic_share if v.status == ModelVersion.Status.ACTIVE else 0)
                              for v in eligible}
    if request.method == "POST":
        values = {v.version: request.POST.get(f"share-{v.pk}", "0").strip() or "0" for v in eligible}
        try:
            shares = _parse_shares(values)
            serving = versions.model_version_set_traffic(shares=shares, actor=request.user, request=request)
        except ModelVersionError as exc:
            messages.error(request, exc.message)
        else:
            split = ", ".join(f"{v.version} {v.traffic_share} %" for v in serving)
            messages.success(request, f"Traffic set: {split}. Studies already queued keep their version.")
            return redirect("admin:diagnosis_modelversion_changelist")
    rows = [{"version": v, "value": values[v.version]} for v in eligible]
    return TemplateResponse(request, "admin/diagnosis/modelversion/traffic.html", _context(
        request, model_admin, "Set traffic shares", rows=rows,
        uncalibrated=[v for v in candidates if not v.is_calibrated]))


def _parse_shares(values: dict[str, str]) -> dict[str, int]:
    shares: dict[str, int] = {}
    for name, raw in values.items():
        try:
            share = int(raw)
        except ValueError:
            raise ModelVersionError(f"The share of {name} must be a whole number of percent. Received: {raw!r}") \
                from None
        if share < 0:
            raise ModelVersionError(f"The share of {name} cannot be negative. Received: {share}")
        if share:
            shares[name] = share
    return shares


def ab_report_view(request: HttpRequest, model_admin: admin.ModelAdmin) -> HttpResponse:
    """Serving and shadow versions side by side on the same reviewed studies, with plain significance statements."""
    _require(model_admin.has_view_permission(request))
    report = performance.ab_report()
    ids = dict(ModelVersion.objects.filter(version__in=[v["version"] for v in report["versions"]])
               .values_list("version", "pk"))
    rows = [{**live, "rows": live_rows(live), "auc_text": format_estimate(live["auc"]),
             "url": reverse("admin:diagnosis_modelversion_change", args=[ids[live["version"]]])}
            for live in report["versions"]]
    drift = [{**d, "windows_view": _drift_windows(d)} for d in report["drift"]]
    # The population note is on every lifecycle page already, the drift note under the drift table.
    caveats = [c for c in report["caveats"] if c not in (report["population_note"], performance.DRIFT_NOTE)]
    return TemplateResponse(request, "admin/diagnosis/modelversion/ab_report.html", _context(
        request, model_admin, "A/B report: serving and shadow versions", report=report, versions=rows,
        generated_at=parse_datetime(report["generated_at"]),
        rate_labels=LIVE_RATES, pairs=report["pairs"], drift=drift, caveats=caveats,
        drift_note=performance.DRIFT_NOTE))
