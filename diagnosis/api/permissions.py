"""Who may call which endpoint. Roles are the groups ``radiologist`` and ``integrator``; staff count as radiologists.

The role checks delegate to :mod:`diagnosis.selectors` so visibility rules live in one place. Which *study* a user
may see is decided by the selectors (``study_get_visible_to`` answers ``Study.DoesNotExist`` → 404); the object
checks below repeat that rule as a second line of defence for views that call ``check_object_permissions``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from diagnosis.models import Study
from diagnosis.selectors.studies import user_can_upload, user_is_radiologist


def request_user(request: Request) -> User:
    """The caller of a view whose permission classes (below) have already refused anonymous requests."""
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated  # never reached behind HasClinicalRole or IsRadiologist
    return user


def _may_see_study(user: Any, study: Study) -> bool:
    return user_is_radiologist(user) or (user.is_authenticated and study.uploaded_by_id == user.pk)


class HasClinicalRole(BasePermission):
    """Radiologists, integrators and staff. An authenticated account without a role is refused (403)."""

    message = "Your account has no PneumoWeb role (radiologist or integrator); ask an administrator."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and user_can_upload(request.user))

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return not isinstance(obj, Study) or _may_see_study(request.user, obj)


class IsRadiologist(BasePermission):
    """Only radiologists (and staff) review studies; integrators submit and read results."""

    message = "Only radiologists can review studies."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and user_is_radiologist(request.user))

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return not isinstance(obj, Study) or _may_see_study(request.user, obj)
