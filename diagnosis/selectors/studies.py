"""Who may see what: every read of studies for a user goes through here, so visibility rules live in one place."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Prefetch, QuerySet

from diagnosis.models import Prediction, Review, Study

RADIOLOGIST_GROUP = "radiologist"
INTEGRATOR_GROUP = "integrator"

UserLike = User | AnonymousUser


def _in_group(user: Any, name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = getattr(user, "_pneumo_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._pneumo_groups = cache
    return name in cache


def user_is_radiologist(user: UserLike) -> bool:
    """Radiologists (and staff) read every study and review them."""
    return bool(user.is_authenticated and (getattr(user, "is_staff", False) or _in_group(user, RADIOLOGIST_GROUP)))


def user_is_integrator(user: UserLike) -> bool:
    return _in_group(user, INTEGRATOR_GROUP)


def user_can_upload(user: UserLike) -> bool:
    return user_is_radiologist(user) or user_is_integrator(user)


def _with_primary_prediction(queryset: QuerySet[Study]) -> QuerySet[Study]:
    primary = Prediction.objects.filter(is_shadow=False).select_related("model_version")
    reviews = Review.objects.select_related("reviewer").order_by("-created_at")
    return queryset.select_related("model_version", "uploaded_by").prefetch_related(
        Prefetch("predictions", queryset=primary, to_attr="primary_predictions"),
        Prefetch("reviews", queryset=reviews, to_attr="reviews_newest_first"),
    )


def study_list_visible_to(*, user: UserLike, status: str | None = None, label: str | None = None) -> QuerySet[Study]:
    """Studies this user may see, in worklist order: highest priority first, then longest waiting."""
    if user_is_radiologist(user):
        queryset = Study.objects.all()
    elif user.is_authenticated and user_is_integrator(user):
        queryset = Study.objects.filter(uploaded_by=user)
    else:
        queryset = Study.objects.none()
    if status:
        queryset = queryset.filter(status=status)
    if label:
        queryset = queryset.filter(predictions__is_shadow=False, predictions__label=label)
    return _with_primary_prediction(queryset).order_by("-priority", "created_at")


def study_get_visible_to(*, user: UserLike, study_id: uuid.UUID | str) -> Study:
    """The study, or ``Study.DoesNotExist`` when it is missing or not this user's to see (both answer 404)."""
    try:
        key = study_id if isinstance(study_id, uuid.UUID) else uuid.UUID(str(study_id))
    except ValueError:
        raise Study.DoesNotExist from None
    return study_list_visible_to(user=user).get(pk=key)


def study_primary_prediction(study: Study) -> Prediction | None:
    cached = getattr(study, "primary_predictions", None)
    if cached is not None:
        return cached[0] if cached else None
    return study.predictions.filter(is_shadow=False).select_related("model_version").first()


def study_latest_review(study: Study) -> Review | None:
    cached = getattr(study, "reviews_newest_first", None)
    if cached is not None:
        return cached[0] if cached else None
    return study.reviews.select_related("reviewer").order_by("-created_at").first()


def study_find(study_id: str) -> Study | None:
    """A study by id for staff pages (admin), or None for a missing study or a malformed id."""
    try:
        key = uuid.UUID(str(study_id))
    except ValueError:
        return None
    return Study.objects.filter(pk=key).first()
