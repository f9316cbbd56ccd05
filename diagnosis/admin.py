from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from diagnosis.models import AuditEvent, ModelVersion, Prediction, Review, Study


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("version", "status", "traffic_share", "threshold", "validated", "image_size", "created_at")
    list_filter = ("status", "validated")
    search_fields = ("version",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "subject_type", "subject_id", "client_ip")
    list_filter = ("action", "subject_type")
    search_fields = ("subject_id", "actor_name", "request_id", "task_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


admin.site.register(Study)
admin.site.register(Prediction)
admin.site.register(Review)
