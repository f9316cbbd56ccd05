"""What every custom admin page of the lifecycle shares: the admin's own context and the permission check."""

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
