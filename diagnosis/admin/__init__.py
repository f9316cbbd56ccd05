"""Django admin: the model lifecycle (versions, training runs, A/B report) and read-only clinical records.

Admin pages only parse input (``forms``), call a service or selector and render (``model_version_views``,
``training_run_views``; numbers are formatted by ``display``). Nothing here imports TensorFlow: anything that
needs it (training, calibrating on a labelled folder, importing a .h5) is a Celery task, enqueued on commit by a
service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from diagnosis.admin import display, model_version_views, training_run_views
from diagnosis.admin import pacs_results as pacs_results  # registers the DICOM node and result-object admins
from diagnosis.admin.common import ReadOnlyAdmin
from diagnosis.models import AuditEvent, ModelVersion, Prediction, Review, Study, TrainingRun
from diagnosis.selectors.performance import population_note, versions_live_performance, versions_score_drift
from diagnosis.selectors.studies import study_find
from diagnosis.services.studies import study_record_view

# Issue 10: the admin says whose it is (Django's default reads "Django administration").
admin.site.site_header = "PneumoWeb administration"
admin.site.site_title = "PneumoWeb admin"
admin.site.index_title = "Model versions, training, studies and the audit log"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # ModelAdmin[...] fails at runtime
    """Versions are registered from an artifact path and changed only through the lifecycle actions (audited)."""

    list_display = (
        "version",
        "status_badge",
        "share",
        "threshold_display",
        "validated",
        "live_agreement",
        "drift_warning",
        "created_at",
    )
    list_display_links = ("version",)
    list_filter = ("status", "validated")
    search_fields = ("version",)
    ordering = ("-created_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # "Register artifact" replaces the add form: a version comes from a checked artifact

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # predictions keep pointing at the version that made them; retire instead

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        info = "diagnosis_modelversion"
        return [
            path(
                "register/", wrap(self._view(model_version_views.model_version_register_view)), name=f"{info}_register"
            ),
            path("traffic/", wrap(self._view(model_version_views.model_version_traffic_view)), name=f"{info}_traffic"),
            path("ab-report/", wrap(self._view(model_version_views.ab_report_view)), name=f"{info}_ab_report"),
            path(
                "<int:pk>/action/<slug:action>/",
                wrap(self._view(model_version_views.model_version_action_view)),
                name=f"{info}_action",
            ),
            path(
                "<int:pk>/plots/<str:name>",
                wrap(self._view(model_version_views.model_version_plot_view)),
                name=f"{info}_plot",
            ),
            *super().get_urls(),
        ]

    def _view(self, view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        def bound(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            return view(request, self, *args, **kwargs)

        return bound

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return model_version_views.model_version_detail_view(request, self, object_id)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"population_note": population_note(), **(extra_context or {})}
        response = super().changelist_view(request, extra_context=extra)
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            self._attach_live_figures(list(response.context_data["cl"].result_list))
        return response

    @staticmethod
    def _attach_live_figures(versions: list[ModelVersion]) -> None:
        # The page's versions, fetched once and cached by the queryset, get their live figures from two queries in
        # all; the columns below read them instead of querying once per row.
        live = versions_live_performance(model_versions=versions)
        drift = versions_score_drift(model_versions=versions)
        for version in versions:
            # Plain attributes on this page's instances only, not model fields: nothing else reads or saves them.
            version.changelist_live = live[version.pk]  # type: ignore[attr-defined]
            version.changelist_drift = drift[version.pk]  # type: ignore[attr-defined]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: ModelVersion) -> str:
        return format_html(
            '<span class="lifecycle-badge lifecycle-badge--{}">{}</span>', obj.status, obj.get_status_display()
        )

    @admin.display(description="traffic", ordering="traffic_share")
    def share(self, obj: ModelVersion) -> str:
        return display.share_text(obj)

    @admin.display(description="threshold", ordering="threshold")
    def threshold_display(self, obj: ModelVersion) -> str:
        if obj.is_calibrated:
            return f"{obj.threshold:.4f}"
        return format_html(
            '{} <span class="lifecycle-badge lifecycle-badge--uncalibrated">uncalibrated</span>', f"{obj.threshold:.4f}"
        )

    @admin.display(description="live agreement")
    def live_agreement(self, obj: ModelVersion) -> str:
        live = getattr(obj, "changelist_live", None) or versions_live_performance(model_versions=[obj])[obj.pk]
        return display.live_agreement_text(live, settings.PNEUMO_LIVE_METRICS_MIN_N)

    @admin.display(description="score drift")
    def drift_warning(self, obj: ModelVersion) -> str | SafeString:
        drift = getattr(obj, "changelist_drift", None) or versions_score_drift(model_versions=[obj])[obj.pk]
        return display.drift_cell(drift)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # as above
    """Launch a training run (queue ``training``), watch its progress, cancel it. Runs are never deleted."""

    list_display = (
        "__str__",
        "version",
        "status",
        "progress_text",
        "val_auc_display",
        "eta_display",
        "created_by",
        "created_at",
        "model_version_link",
    )
    list_filter = ("status",)
    search_fields = ("version", "data_dir")

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        def cancel(request: HttpRequest, pk: int) -> HttpResponse:
            return training_run_views.training_run_cancel_view(request, self, pk)

        return [
            path("<int:pk>/cancel/", self.admin_site.admin_view(cancel), name="diagnosis_trainingrun_cancel"),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return training_run_views.training_run_add_view(request, self)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return training_run_views.training_run_detail_view(request, self, object_id)

    @admin.display(description="progress")
    def progress_text(self, obj: TrainingRun) -> str:
        return display.training_progress_text(obj)

    @admin.display(description="val AUC (best)")
    def val_auc_display(self, obj: TrainingRun) -> str:
        if obj.val_auc is None:
            return "—"
        best = f" ({obj.best_val_auc:.3f})" if obj.best_val_auc is not None else ""
        return f"{obj.val_auc:.3f}{best}"

    @admin.display(description="time left")
    def eta_display(self, obj: TrainingRun) -> str:
        if obj.status != TrainingRun.Status.RUNNING or obj.eta_seconds is None:
            return "—"
        return f"≤ {display.format_duration(obj.eta_seconds)}"

    @admin.display(description="model version")
    def model_version_link(self, obj: TrainingRun) -> str:
        version = obj.model_version  # None without a query when the run registered no version
        if version is None:
            return "—"
        url = reverse("admin:diagnosis_modelversion_change", args=[obj.model_version_id])
        return format_html('<a href="{}">{}</a>', url, version.version)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "subject_type", "subject_id", "client_ip")
    list_filter = ("action", "subject_type")
    search_fields = ("subject_id", "actor_name", "request_id", "task_id")


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "patient_id", "accession_number", "model_version", "created_at")
    list_filter = ("status", "format", "source")
    search_fields = ("patient_id", "accession_number", "=id")
    # Image files are patient data served only by the dashboard's permission-checked views, never by a raw link.
    exclude = ("file", "display_image")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        # Opening a study's record is a view of patient data: audited as the dashboard audits it.
        if request.method == "GET" and response.status_code == 200 and request.user.is_authenticated:
            study = study_find(object_id)
            if study is not None:
                study_record_view(study=study, user=request.user, request=request)
        return response


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ("study", "model_version", "is_shadow", "label", "probability", "threshold", "created_at")
    list_filter = ("is_shadow", "label", "model_version")
    exclude = ("heatmap", "overlay")


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("study", "reviewer", "finding", "agrees_with_model", "created_at")
    list_filter = ("finding", "agrees_with_model")
