"""Admin for DICOM nodes (with a C-ECHO test) and for the result objects sent back to the PACS (with resend).

Credentials stay out of the list display and are never rendered back: the password box is empty on every form
and leaving it empty keeps the stored password. Saving and removing go through ``services.dicom_nodes`` (audited
without credentials); resending through ``services.pacs_results``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from diagnosis.admin.common import ReadOnlyAdmin
from diagnosis.exceptions import ApplicationError
from diagnosis.interop.dicom_send import url_without_credentials
from diagnosis.models import DicomNode, ResultObject, ResultSend
from diagnosis.services.dicom_nodes import dicom_node_echo, dicom_node_remove, dicom_node_save
from diagnosis.services.pacs_results_recovery import result_objects_resend, result_sends_resend


class DicomNodeForm(forms.ModelForm):  # type: ignore[type-arg]  # ModelForm[...] fails at runtime
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="DICOMweb HTTP Basic password. Never shown; leave empty to keep the current one.",
    )
    clear_password = forms.BooleanField(required=False, help_text="Remove the stored password.")
    dicomweb_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="DICOMweb base URL (results are sent by STOW-RS to {url}/studies) instead of C-STORE.",
    )

    class Meta:
        model = DicomNode
        fields = (
            "name",
            "ae_title",
            "host",
            "port",
            "dicomweb_url",
            "username",
            "password",
            "sends_studies",
            "receives_results",
            "enabled",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("clear_password"):
            cleaned["password"] = ""
        elif not cleaned.get("password"):
            cleaned["password"] = self.instance.password  # empty box: keep what is stored
        return cleaned

    @property
    def changed_data(self) -> list[str]:
        changed = [name for name in super().changed_data if name not in ("password", "clear_password")]
        if self.cleaned_data.get("password", "") != (self.initial.get("password") or ""):
            changed.append("password")
        return changed


@admin.register(DicomNode)
class DicomNodeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # ModelAdmin[...] fails at runtime
    form = DicomNodeForm
    list_display = (
        "name",
        "ae_title",
        "address",
        "sends_studies",
        "receives_results",
        "enabled",
        "updated_at",
    )
    list_filter = ("enabled", "sends_studies", "receives_results")
    search_fields = ("name", "ae_title", "host")
    actions = ("test_connection",)
    change_form_template = "admin/diagnosis/dicomnode/change_form.html"

    @admin.display(description="Address")
    def address(self, obj: DicomNode) -> str:
        if obj.dicomweb_url:
            return f"DICOMweb {url_without_credentials(obj.dicomweb_url)}"
        return f"{obj.host}:{obj.port}" if obj.host else "—"

    def save_model(self, request: HttpRequest, obj: DicomNode, form: forms.Form, change: bool) -> None:
        dicom_node_save(
            node=obj, created=not change, changed_fields=list(form.changed_data), actor=request.user, request=request
        )

    def delete_model(self, request: HttpRequest, obj: DicomNode) -> None:
        dicom_node_remove(node=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DicomNode]) -> None:
        for node in queryset:
            dicom_node_remove(node=node, actor=request.user, request=request)

    @admin.action(description="Test connection (C-ECHO)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[DicomNode]) -> None:
        for node in queryset:
            _echo_message(request, node)

    def get_urls(self) -> list[URLPattern]:
        @require_POST
        def echo_view(request: HttpRequest, pk: int) -> HttpResponse:
            if not self.has_change_permission(request):
                return HttpResponse(status=403)
            node = get_object_or_404(DicomNode, pk=pk)
            _echo_message(request, node)
            return HttpResponseRedirect(reverse("admin:diagnosis_dicomnode_change", args=[node.pk]))

        return [
            path("<int:pk>/echo/", self.admin_site.admin_view(echo_view), name="diagnosis_dicomnode_echo"),
            *super().get_urls(),
        ]


def _echo_message(request: HttpRequest, node: DicomNode) -> None:
    result = dicom_node_echo(node=node)
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(request, level, f"{node.name}: {result.message}")


def _resend_message(request: HttpRequest, count: int) -> None:
    if count:
        messages.success(request, f"{count} send(s) queued again.")
    else:
        messages.info(request, "Nothing to resend: every selected send is pending or already sent.")


@admin.register(ResultObject)
class ResultObjectAdmin(ReadOnlyAdmin):
    list_display = ("kind", "study_link", "sop_instance_uid", "sends_summary", "created_at")
    list_filter = ("kind",)
    search_fields = ("sop_instance_uid", "=study__id")
    exclude = ("file",)  # patient data: no raw download link
    actions = ("resend",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ResultObject]:
        return super().get_queryset(request).prefetch_related("sends")

    @admin.display(description="Study")
    def study_link(self, obj: ResultObject) -> str:
        url = reverse("dashboard:study", kwargs={"study_id": obj.study_id})
        return format_html('<a href="{}">{}</a>', url, obj.study_id)

    @admin.display(description="Sends")
    def sends_summary(self, obj: ResultObject) -> str:
        return ", ".join(f"{send.node_name}: {send.status}" for send in obj.sends.all()) or "—"

    @admin.action(description="Resend to every result destination (new ones, and failed sends)")
    def resend(self, request: HttpRequest, queryset: QuerySet[ResultObject]) -> None:
        try:
            count = result_objects_resend(results=queryset, actor=request.user, request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return
        _resend_message(request, count)


@admin.register(ResultSend)
class ResultSendAdmin(ReadOnlyAdmin):
    list_display = ("result", "node_name", "status", "attempts", "sent_at", "error", "updated_at")
    list_filter = ("status", "node_name", "result__kind")
    search_fields = ("node_name", "result__sop_instance_uid")
    list_select_related = ("result",)
    actions = ("resend",)

    @admin.action(description="Resend the selected sends")
    def resend(self, request: HttpRequest, queryset: QuerySet[ResultSend]) -> None:
        _resend_message(request, result_sends_resend(sends=queryset, actor=request.user, request=request))
