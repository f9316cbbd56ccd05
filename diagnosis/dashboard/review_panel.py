"""The study page's review panel (templates/diagnosis/_review_panel.html): the standing review, its history, and
the form to record a first review or, as a separate explicit step, to amend the standing one.

Safety (issue 10): once a study has a review, the page shows it as standing and offers no pre-selected finding and
no one-click confirm; the form appears only after "Amend review", with no finding chosen and a reason required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnosis.dashboard.forms import ReviewForm
from diagnosis.models import Prediction, Review, Study
from diagnosis.selectors.reviews import study_review_history


@dataclass(frozen=True)
class ReviewEntry:
    """One review as the panel shows it: "Normal — overridden by Dr X at 10:42, reason …"."""

    review: Review
    reviewer_name: str
    verb: str
    is_amendment: bool

    @property
    def css(self) -> str:
        return "amended" if self.is_amendment else ("override" if self.review.agrees_with_model is False else "done")


def _verb(review: Review, previous: Review | None) -> str:
    prediction = review.prediction
    if previous is not None:
        return f"amended (was {previous.get_finding_display()})"
    if prediction is None:
        return "reviewed"
    if review.finding == prediction.label:
        return "AI finding confirmed"
    return f"overridden (AI: {prediction.get_label_display()})"


def review_entries(study: Study) -> list[ReviewEntry]:
    """The study's reviews, newest first, each marked as the first review or an amendment."""
    history = study_review_history(study)
    entries = []
    for index, review in enumerate(history):
        # Every review but the oldest changed the one before it (the next older in the list).
        previous = history[index + 1] if index + 1 < len(history) else None
        entries.append(
            ReviewEntry(
                review=review,
                reviewer_name=review.reviewer.get_full_name() or review.reviewer.get_username(),
                verb=_verb(review, previous),
                is_amendment=previous is not None,
            )
        )
    return entries


def review_panel_context(
    *, study: Study, prediction: Prediction | None, form: ReviewForm | None = None, amending: bool = False
) -> dict[str, Any]:
    """Template context of the panel. ``amending``: the amend form is shown open (``?amend=1`` or a refused amend)."""
    entries = review_entries(study)
    standing = entries[0] if entries else None
    if form is None:
        # A first review starts from the AI's finding; an amendment starts from nothing, so no click can re-confirm.
        initial = {"finding": prediction.label} if prediction is not None and standing is None else {}
        form = ReviewForm(initial=initial)
    return {
        "form": form,
        "review_entries": entries,
        "standing_review": standing,
        "amending": amending and standing is not None,
        "review_findings": Review.Finding.choices,
        "ai_label": prediction.label if prediction is not None else "",
    }
