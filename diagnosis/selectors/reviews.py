"""Reads for the review flow: the standing review and its history, and the next study awaiting review."""

from __future__ import annotations

import uuid

from django.db.models import Exists, OuterRef, QuerySet

from diagnosis.models import Review, Study
from diagnosis.selectors.studies import UserLike, study_list_visible_to


def study_review_history(study: Study) -> list[Review]:
    """Every review of the study, newest first: the first one is the standing review."""
    cached: list[Review] | None = getattr(study, "reviews_newest_first", None)
    if cached is not None:
        return cached
    return list(study.reviews.select_related("reviewer").order_by("-created_at", "-id"))


def study_list_awaiting_review(*, user: UserLike) -> QuerySet[Study]:
    """Completed studies with no review yet, in worklist order (highest priority first, then longest waiting).

    The same order as the worklist (``study_list_visible_to``), so "Save and next unreviewed" walks the queue the
    reader sees under "Awaiting review".
    """
    reviewed = Review.objects.filter(study=OuterRef("pk"))
    return study_list_visible_to(user=user, status=Study.Status.COMPLETED).filter(~Exists(reviewed))


def study_next_unreviewed(*, user: UserLike, exclude: uuid.UUID | None = None) -> Study | None:
    """The first study awaiting review (``exclude``: the study just reviewed), or None when the queue is empty."""
    queryset = study_list_awaiting_review(user=user)
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude)
    return queryset.first()
