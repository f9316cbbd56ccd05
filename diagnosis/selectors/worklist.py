"""The worklist as a triage tool: which studies (scope, search), in which order (a whitelist of sorts), and the
per-row facts a reader scans (age, sex, view, waiting time against the turnaround target, intended-use flags).

Visibility stays in :func:`diagnosis.selectors.studies.study_list_visible_to`; this module only narrows and orders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from diagnosis import ml
from diagnosis.models import Prediction, Review, Study
from diagnosis.selectors.studies import UserLike, study_list_visible_to

SCOPE_AWAITING = "awaiting"
#: The worklist's scopes, in the order of its tabs. "awaiting" (completed, no review yet) is the default.
SCOPES: dict[str, str] = {
    SCOPE_AWAITING: "Awaiting review",
    "mine": "Reviewed by me",
    "reviewed": "Reviewed",
    "in_progress": "In progress",
    "failed": "Failed",
    "all": "All",
}

#: Sort keys a client may ask for (``?sort=received`` or ``?sort=-received``), mapped to the ORM ordering. Anything
#: else falls back to the triage order: a query string never reaches ``order_by`` unchecked.
SORTS: dict[str, tuple[str, ...]] = {
    "priority": ("-priority", "created_at"),
    "received": ("created_at",),
    "patient": ("patient_id", "created_at"),
    "accession": ("accession_number", "created_at"),
    "status": ("status", "-priority", "created_at"),
    "probability": ("primary_probability", "created_at"),
}
DEFAULT_SORT = "priority"


def _reversed(ordering: tuple[str, ...]) -> list[Any]:
    out: list[Any] = []
    for field in ordering:
        name = field.removeprefix("-")
        if field.startswith("-"):
            out.append(F(name).asc(nulls_first=True))
        else:
            out.append(F(name).desc(nulls_last=True))
    return out


def worklist_sort(value: str | None) -> tuple[str, bool]:
    """The whitelisted sort key and whether it is descending; unknown values give the triage order."""
    raw = (value or "").strip()
    key = raw.removeprefix("-")
    if key not in SORTS:
        return DEFAULT_SORT, False
    return key, raw.startswith("-")


def worklist_studies(
    *, user: UserLike, scope: str = SCOPE_AWAITING, query: str = "", sort: str = DEFAULT_SORT, label: str | None = None
) -> QuerySet[Study]:
    """Studies of one worklist tab, searched and sorted, with the prefetches the rows need (constant query count)."""
    queryset = study_list_visible_to(user=user, label=label)
    reviewed = Exists(Review.objects.filter(study=OuterRef("pk")))
    if scope == SCOPE_AWAITING:
        queryset = queryset.filter(~reviewed, status=Study.Status.COMPLETED)
    elif scope == "mine":
        queryset = queryset.filter(Exists(Review.objects.filter(study=OuterRef("pk"), reviewer_id=user.pk)))
    elif scope == "reviewed":
        queryset = queryset.filter(reviewed)
    elif scope == "in_progress":
        queryset = queryset.filter(status__in=[Study.Status.QUEUED, Study.Status.PROCESSING])
    elif scope == "failed":
        queryset = queryset.filter(status=Study.Status.FAILED)
    if text := query.strip()[:64]:
        queryset = queryset.filter(
            Q(patient_id__icontains=text)
            | Q(accession_number__icontains=text)
            | Q(dicom_metadata__patient_name__icontains=text)
        )
    key, descending = worklist_sort(sort)
    if key == "probability":
        primary = Prediction.objects.filter(study=OuterRef("pk"), is_shadow=False).values("probability")[:1]
        queryset = queryset.annotate(primary_probability=Subquery(primary))
    ordering = SORTS[key]
    if descending:
        return queryset.order_by(*_reversed(ordering))
    return queryset.order_by(*ordering)


# --- Row facts -----------------------------------------------------------------------------------------------------

_SEX = {"M": "M", "F": "F", "O": "Other"}


def age_display(value: str) -> str:
    """DICOM PatientAge ``"054Y"`` → ``"54 y"``, ``"006M"`` → ``"6 mo"``; empty when absent or unreadable."""
    value = (value or "").strip().upper()
    if ml.parse_dicom_age(value) is None:
        return ""
    unit = value[-1] if value[-1].isalpha() else "Y"
    number = int(value.rstrip("DWMY").strip())
    return {"Y": f"{number} y", "M": f"{number} mo", "W": f"{number} wk", "D": f"{number} d"}[unit]


def sex_display(value: str) -> str:
    return _SEX.get((value or "").strip().upper(), "")


@dataclass(frozen=True)
class Waiting:
    """How long a study has waited for its first review, against the turnaround target.

    ``state`` is "ok" (under half the target), "near" (over half), "over" (past it) or "done" (reviewed: ``minutes``
    is then the turnaround from arrival to the first review).
    """

    minutes: int
    state: str
    target_minutes: int

    @property
    def text(self) -> str:
        hours, minutes = divmod(self.minutes, 60)
        span = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
        return f"turnaround {span}" if self.state == "done" else f"waiting {span}"


def waiting(
    *, received: dt.datetime, first_review: dt.datetime | None, now: dt.datetime, target_minutes: int
) -> Waiting:
    """Waiting time (or turnaround, once reviewed) coloured against the turnaround target."""
    end = first_review or now
    minutes = max(0, int((end - received).total_seconds() // 60))
    if first_review is not None:
        return Waiting(minutes=minutes, state="done", target_minutes=target_minutes)
    if target_minutes > 0 and minutes >= target_minutes:
        state = "over"
    elif target_minutes > 0 and minutes * 2 >= target_minutes:
        state = "near"
    else:
        state = "ok"
    return Waiting(minutes=minutes, state=state, target_minutes=target_minutes)
