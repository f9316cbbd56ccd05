"""Admin pages of training runs: launch one (queue ``training``), watch its progress, cancel it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from diagnosis.admin import display, training_presets
from diagnosis.admin.common import admin_context, require
from diagnosis.admin.forms import TrainingRunForm, imagenet_weights_file
from diagnosis.exceptions import InvalidInputError
from diagnosis.models import TrainingRun
from diagnosis.selectors.audit import audit_trail
from diagnosis.services.training_runs import training_run_create, training_run_request_cancel

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
REFRESH_SECONDS = 5


def _last_data_dir() -> str:
    run = TrainingRun.objects.order_by("-created_at").only("data_dir").first()
    return run.data_dir if run is not None else ""


def training_run_add_view(request: HttpRequest, model_admin: ModelAdmin) -> HttpResponse:
    """The launch form: a preset (``?preset=quick|full``) fills it in; each preset shows its estimated duration."""
    require(model_admin.has_add_permission(request))
    preset = training_presets.preset_get(request.GET.get("preset"))
    imagenet_available = imagenet_weights_file() is not None
    initial = {
        "target_sensitivity": settings.PNEUMO_DEFAULT_TARGET_SENSITIVITY,
        "data_dir": _last_data_dir(),
        **preset.initial(imagenet_available=imagenet_available),
    }
    form = TrainingRunForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            run = training_run_create(
                **form.cleaned_data, actor=request.user if request.user.is_authenticated else None, request=request
            )
        except InvalidInputError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                f"Training run {run.pk} queued (version {run.version}). It runs on the "
                "training queue and never delays screening.",
            )
            return redirect("admin:diagnosis_trainingrun_change", run.pk)
    data_dir = (request.POST.get("data_dir") or "").strip() or initial["data_dir"]
    return TemplateResponse(
        request,
        "admin/diagnosis/trainingrun/add.html",
        admin_context(
            request,
            model_admin,
            "Launch a training run",
            form=form,
            preset=preset,
            presets=training_presets.preset_rows(data_dir=data_dir or None, imagenet_available=imagenet_available),
            estimate_folder=data_dir,
        ),
    )


def training_run_detail_view(request: HttpRequest, model_admin: ModelAdmin, object_id: str) -> HttpResponse:
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    run = get_object_or_404(
        TrainingRun.objects.select_related("created_by", "model_version"),
        pk=object_id if str(object_id).isdigit() else -1,
    )
    require(model_admin.has_view_permission(request, run))
    unfinished = run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    log = [
        {
            **entry,
            "val_auc_text": display.format_estimate(entry.get("val_auc")),
            "loss_text": "—" if entry.get("loss") is None else f"{entry['loss']:.4f}",
            "time_text": display.format_duration(entry.get("seconds")),
            # Recorded since issue 10 (the training form's estimates come from it); "—" for older runs.
            "pace_text": f"{entry['images_per_second']:.1f}" if entry.get("images_per_second") else "—",
            "at_time": parse_datetime(entry.get("at") or "") or "—",
        }
        for entry in reversed(run.progress_log)
    ]
    return TemplateResponse(
        request,
        "admin/diagnosis/trainingrun/detail.html",
        admin_context(
            request,
            model_admin,
            f"Training run {run.pk}",
            run=run,
            unfinished=unfinished,
            refresh_seconds=REFRESH_SECONDS if unfinished else None,
            progress_text=display.training_progress_text(run),
            percent=display.progress_percent(run),
            eta=display.format_duration(run.eta_seconds) if run.eta_seconds else None,
            seconds_per_epoch=display.format_duration(run.seconds_per_epoch) if run.seconds_per_epoch else None,
            log=log,
            can_change=unfinished and model_admin.has_change_permission(request, run),
            audit_trail=audit_trail(subject_type="training_run", subject_id=str(run.pk)),
        ),
    )


@require_POST
def training_run_cancel_view(request: HttpRequest, model_admin: ModelAdmin, pk: int) -> HttpResponse:
    run = get_object_or_404(TrainingRun, pk=pk)
    require(model_admin.has_change_permission(request, run))
    before = run.status
    run = training_run_request_cancel(
        run=run,
        actor=request.user if request.user.is_authenticated else None,
        request=request,
        force=request.POST.get("force") == "1",
    )
    if run.status == TrainingRun.Status.CANCELLED and before == TrainingRun.Status.QUEUED:
        messages.success(request, f"Training run {run.pk} cancelled before it started.")
    elif run.status == TrainingRun.Status.CANCELLED and before == TrainingRun.Status.RUNNING:
        messages.warning(request, f"Training run {run.pk} marked cancelled.")
    elif run.status == TrainingRun.Status.RUNNING:
        messages.success(
            request, f"Cancel requested: training run {run.pk} stops within a few seconds and saves no model."
        )
    else:
        messages.info(request, f"Training run {run.pk} had already ended ({run.get_status_display().lower()}).")
    return redirect("admin:diagnosis_trainingrun_change", run.pk)
