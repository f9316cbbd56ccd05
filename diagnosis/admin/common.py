"""What the admin modules share: the admin's own context, the permission check, and read-only record admins."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from diagnosis.selectors.performance import population_note


def admin_context(request: HttpRequest, model_admin: admin.ModelAdmin[Any], title: str, **extra: Any) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "population_note": population_note(),
        **extra,
    }


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # ModelAdmin is generic only in the stubs
    """Clinical records and the audit trail: viewable by staff, never added, changed or deleted from admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
