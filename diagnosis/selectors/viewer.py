"""Reads for the study viewer (issue 10): the reader's viewer preferences and the neighbours of a study."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from diagnosis.models import Study, ViewerPreference
from diagnosis.selectors.studies import UserLike, study_list_visible_to


@dataclass(frozen=True)
class ViewerSettings:
    heatmap_visible: bool
    heatmap_opacity: int
    colormap: str
    threshold: int

    def as_dict(self) -> dict[str, object]:
        return {
            "heatmap_visible": self.heatmap_visible,
            "heatmap_opacity": self.heatmap_opacity,
            "colormap": self.colormap,
            "threshold": self.threshold,
        }


DEFAULT_VIEWER_SETTINGS = ViewerSettings(
    heatmap_visible=True, heatmap_opacity=40, colormap=ViewerPreference.Colormap.VIRIDIS.value, threshold=0
)


def viewer_settings_for(*, user: UserLike) -> ViewerSettings:
    """The user's saved viewer settings, or the defaults (viridis, 40 %, shown, no threshold)."""
    preference = ViewerPreference.objects.filter(user_id=user.pk).first() if user.is_authenticated else None
    if preference is None:
        return DEFAULT_VIEWER_SETTINGS
    return ViewerSettings(
        heatmap_visible=preference.heatmap_visible,
        heatmap_opacity=preference.heatmap_opacity,
        colormap=preference.colormap,
        threshold=preference.threshold,
    )


@dataclass(frozen=True)
class StudyNeighbours:
    previous: Study | None
    next: Study | None


def study_neighbours(*, user: UserLike, study: Study) -> StudyNeighbours:
    """The studies before and after this one in worklist order (priority first, then longest waiting).

    Keyset queries on (-priority, created_at, id), the worklist's order with the id as tie-break, so the cost does
    not grow with the worklist.
    """
    visible = study_list_visible_to(user=user)
    p, c, key = study.priority, study.created_at, study.pk
    after = Q(priority__lt=p) | Q(priority=p, created_at__gt=c) | Q(priority=p, created_at=c, id__gt=key)
    before = Q(priority__gt=p) | Q(priority=p, created_at__lt=c) | Q(priority=p, created_at=c, id__lt=key)
    following = visible.filter(after).order_by("-priority", "created_at", "id").first()
    preceding = visible.filter(before).order_by("priority", "-created_at", "-id").first()
    return StudyNeighbours(previous=preceding, next=following)
