"""Admin pages of model versions: a version's page and its actions, register, traffic shares, A/B report, plots.

Each view parses input (``diagnosis.admin.forms``), calls ONE service or selector with the acting admin (the
service writes the audit event and enqueues any TensorFlow work on commit), and renders. A refused action
(``ModelVersionError``) is shown as an admin message; nothing here decides clinical policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from diagnosis.admin import display
from diagnosis.admin.common import admin_context, require
from diagnosis.admin.forms import RegisterForm, parse_target_sensitivity, parse_traffic_shares
from diagnosis.exceptions import ModelVersionError
from diagnosis.models import ModelVersion
from diagnosis.selectors import performance
from diagnosis.selectors.audit import audit_trail
from diagnosis.selectors.model_versions import (
    model_version_ids_by_name,
    model_version_plot_names,
    model_version_plot_path,
    model_version_traffic_candidates,
)
from diagnosis.services import calibration, model_registration, model_versions

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]


def model_version_plot_view(request: HttpRequest, model_admin: ModelAdmin, pk: int, name: str) -> FileResponse:
    """Stream one evaluation plot of a version's artifact (admin only; names whitelisted from the folder)."""
    version = get_object_or_404(ModelVersion, pk=pk)
    require(model_admin.has_view_permission(request, version))
    # Only a name listed in the folder is served: "../", absolute paths and symlinks never reach the filesystem.
    path = model_version_plot_path(version, name)
    if path is None:
        raise Http404("No such plot.")
    response = FileResponse(path.open("rb"), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=300"
    return response


def model_version_detail_view(request: HttpRequest, model_admin: ModelAdmin, object_id: str) -> HttpResponse:
    """A version's page: everything about it, read-only, with its lifecycle actions (each a POST form)."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    version = get_object_or_404(ModelVersion, pk=object_id if str(object_id).isdigit() else -1)
    require(model_admin.has_view_permission(request, version))
    live = performance.version_live_performance(model_version=version)
    drift = performance.score_drift(model_version=version)
    plots = [
        {"name": name, "url": reverse("admin:diagnosis_modelversion_plot", args=[version.pk, name])}
        for name in model_version_plot_names(version)
    ]
    return TemplateResponse(
        request,
        "admin/diagnosis/modelversion/detail.html",
        admin_context(
            request,
            model_admin,
            f"Model version {version.version}",
            version=version,
            threshold_text=display.threshold_text(version),
            threshold_method=display.key_values(version.threshold_method),
            preprocessing=display.key_values(version.preprocessing),
            training_summary=display.training_summary(version),
            validation_metrics=display.metric_rows(version.metrics),
            test_metrics=display.metric_rows(version.test_metrics),
            validation_n=display.metric_counts(version.metrics),
            test_n=display.metric_counts(version.test_metrics),
            live=live,
            live_min_n=settings.PNEUMO_LIVE_METRICS_MIN_N,
            live_shown=display.live_rates_shown(live, settings.PNEUMO_LIVE_METRICS_MIN_N),
            uncalibrated_serving_note=display.UNCALIBRATED_SERVING_NOTE,
            live_rows=display.live_rows(live),
            live_auc=display.format_estimate(live["auc"]),
            caveats=performance.PERFORMANCE_CAVEATS,
            drift=drift,
            drift_windows=display.drift_windows(drift),
            plots=plots,
            training_runs=version.training_runs.order_by("-created_at"),
            can_change=model_admin.has_change_permission(request, version),
            default_target=settings.PNEUMO_DEFAULT_TARGET_SENSITIVITY,
            audit_trail=audit_trail(subject_type="model_version", subject_id=version.version),
        ),
    )


def _run_action(request: HttpRequest, version: ModelVersion, action: str) -> str:
    """Do one lifecycle action and say what happened, in a sentence for the admin."""
    actor = request.user if request.user.is_authenticated else None
    if action == "shadow":
        model_versions.model_version_set_shadow(model_version=version, actor=actor, request=request)
        return f"{version.version} now runs in shadow on every new study; its output is stored, never shown."
    if action == "activate":
        allow = request.POST.get("allow_unvalidated") == "on"
        model_versions.model_version_activate(
            model_version=version, allow_unvalidated=allow, actor=actor, request=request
        )
        return f"{version.version} is active and serves 100 % of new studies."
    if action == "retire":
        model_versions.model_version_retire(model_version=version, actor=actor, request=request)
        return f"{version.version} is retired."
    if action == "calibrate-reviews":
        target = parse_target_sensitivity(request.POST.get("target_sensitivity"))
        version = calibration.model_version_calibrate_on_reviews(
            model_version=version, target_sensitivity=target, actor=actor, request=request
        )
        return (
            f"{version.version} calibrated on this hospital's reviewed studies: threshold "
            f"{version.threshold:.4f} for a target sensitivity of {target:.2f}."
        )
    if action == "calibrate-folder":
        data_dir = request.POST.get("data_dir", "").strip()
        target = calibration.model_version_calibrate_on_folder_enqueue(
            model_version=version,
            data_dir=data_dir,
            target_sensitivity=parse_target_sensitivity(request.POST.get("target_sensitivity")),
            actor=actor,
        )
        return (
            f"Calibration of {version.version} on {data_dir} (target sensitivity {target:.2f}) queued on the "
            "training worker; the new threshold appears here (and in the audit log) when it is done."
        )
    raise Http404("No such action.")


@require_POST
def model_version_action_view(request: HttpRequest, model_admin: ModelAdmin, pk: int, action: str) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    require(model_admin.has_change_permission(request, version))
    try:
        messages.success(request, _run_action(request, version, action))
    except ModelVersionError as exc:
        messages.error(request, exc.message)
    return redirect("admin:diagnosis_modelversion_change", version.pk)


def model_version_register_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    """Register an artifact from a path: a folder now (its sha256 is checked), a notebook .h5 on a worker."""
    require(model_admin.has_change_permission(request))
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        response = _register(request, form)
        if response is not None:
            return response
    return TemplateResponse(
        request,
        "admin/diagnosis/modelversion/register.html",
        admin_context(request, model_admin, "Register a model artifact", form=form),
    )


def _register(request: HttpRequest, form: RegisterForm) -> HttpResponse | None:
    path, name = form.cleaned_data["path"], form.cleaned_data["version"].strip()
    notes = form.cleaned_data["notes"]
    actor = request.user if request.user.is_authenticated else None
    try:
        if model_registration.model_version_is_h5_path(path):
            # Wrapping a .h5 loads it with Keras: TensorFlow, so a worker does it and audits the outcome.
            model_registration.model_version_register_enqueue(path=path, version=name or None, notes=notes, actor=actor)
            messages.success(
                request,
                f"Import of {path.rsplit('/', 1)[-1]} queued on the training worker; the "
                "version appears in this list (uncalibrated) when it is done.",
            )
            return redirect("admin:diagnosis_modelversion_changelist")
        version = model_registration.model_version_register(
            path=path, version=name or None, notes=notes, actor=actor, request=request
        )
    except ModelVersionError as exc:
        form.add_error(None, exc.message)
        return None
    state = "calibrated" if version.is_calibrated else "NOT calibrated (it cannot take traffic yet)"
    messages.success(request, f"Registered {version.version} (sha256 {version.sha256[:12]}…); threshold {state}.")
    return redirect("admin:diagnosis_modelversion_change", version.pk)


def model_version_traffic_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    """One share per calibrated, non-retired version; shares of the serving versions must add up to 100 %."""
    require(model_admin.has_change_permission(request))
    candidates = model_version_traffic_candidates()
    eligible = [v for v in candidates if v.is_calibrated]
    values: dict[str, str] = {
        v.version: str(v.traffic_share if v.status == ModelVersion.Status.ACTIVE else 0) for v in eligible
    }
    if request.method == "POST":
        values = {v.version: request.POST.get(f"share-{v.pk}", "0").strip() or "0" for v in eligible}
        try:
            serving = model_versions.model_version_set_traffic(
                shares=parse_traffic_shares(values),
                actor=request.user if request.user.is_authenticated else None,
                request=request,
            )
        except ModelVersionError as exc:
            messages.error(request, exc.message)
        else:
            split = ", ".join(f"{v.version} {v.traffic_share} %" for v in serving)
            messages.success(request, f"Traffic set: {split}. Studies already queued keep their version.")
            return redirect("admin:diagnosis_modelversion_changelist")
    rows = [{"version": v, "value": values[v.version]} for v in eligible]
    # The untrained demo model may serve without a calibrated threshold (model_version_activate's one exception):
    # it is shown with its share, which counts in the total now, though no share can be given to it here.
    serving_uncalibrated = [v for v in candidates if v.is_serving and not v.is_calibrated]
    return TemplateResponse(
        request,
        "admin/diagnosis/modelversion/traffic.html",
        admin_context(
            request,
            model_admin,
            "Set traffic shares",
            rows=rows,
            serving_uncalibrated=serving_uncalibrated,
            serving_total=sum(v.traffic_share for v in candidates if v.is_serving),
            uncalibrated=[v for v in candidates if not v.is_calibrated and not v.is_serving],
            uncalibrated_serving_note=display.UNCALIBRATED_SERVING_NOTE,
        ),
    )


def ab_report_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    """Serving and shadow versions side by side on the same reviewed studies, with plain significance statements."""
    require(model_admin.has_view_permission(request))
    report = performance.ab_report()
    ids = model_version_ids_by_name([v["version"] for v in report["versions"]])
    min_n = settings.PNEUMO_LIVE_METRICS_MIN_N
    rows = [
        {
            **live,
            "shown": display.live_rates_shown(live, min_n),
            "rows": display.live_rows(live),
            "auc_text": display.format_estimate(live["auc"]),
            "url": reverse("admin:diagnosis_modelversion_change", args=[ids[live["version"]]]),
        }
        for live in report["versions"]
    ]
    drift = [{**d, "windows_view": display.drift_windows(d)} for d in report["drift"]]
    # The population note is on every lifecycle page already, the drift note under the drift table.
    caveats = [c for c in report["caveats"] if c not in (report["population_note"], performance.DRIFT_NOTE)]
    return TemplateResponse(
        request,
        "admin/diagnosis/modelversion/ab_report.html",
        admin_context(
            request,
            model_admin,
            "A/B report: serving and shadow versions",
            report=report,
            versions=rows,
            generated_at=parse_datetime(report["generated_at"]),
            rate_labels=display.LIVE_RATES,
            live_min_n=min_n,
            pairs=report["pairs"],
            drift=drift,
            caveats=caveats,
            drift_note=performance.DRIFT_NOTE,
        ),
    )
