"""Live performance of model versions on radiologist-reviewed studies, the A/B report and score drift (reads only).

Truth is the LATEST review of a study (it stands, as everywhere else). Each version is judged on its own stored
predictions, primary or shadow, at the threshold it predicted with. Statistics come from mlcore through the
gateway (pure NumPy): Wilson intervals, McNemar's exact test for paired comparisons, ROC AUC, population stability
index. Functions named ``versions_*`` compute the same figures for many versions in a fixed number of queries.

Caveats that every printout carries (``PERFORMANCE_CAVEATS``): only reviewed studies count, and a radiologist
reviewing a study saw the serving version's output, which can favour it over a shadow version.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from diagnosis.ml import mcnemar_exact, population_stability_index, roc_auc, wilson_interval
from diagnosis.models import ModelVersion, Prediction, Review

#: Fewer paired reviewed studies than this and the A/B report declines to compare two versions.
AB_MIN_PAIRED_STUDIES = 20
SIGNIFICANCE_LEVEL = 0.05
#: A drift window with fewer predictions gets no PSI (ten bins of a handful of scores are noise).
DRIFT_MIN_WINDOW_PREDICTIONS = 30

DRIFT_NOTE = (
    "PSI compares score distributions with the validation scores: a change in the share of pneumonia cases alone "
    "also moves it, so a warning asks for a check, it does not prove the model got worse."
)

ROLE_SERVING = "serving"
ROLE_SHADOW = "shadow"

PERFORMANCE_CAVEATS = (
    "Truth is the latest radiologist review; only reviewed studies count, so if some studies are reviewed more "
    "often than others (for example AI-positive ones) these numbers are biased.",
    'Studies reviewed "Other abnormality" or "Non-diagnostic image" make no pneumonia call: they are excluded from '
    "every rate and counted separately.",
    "Radiologists reviewed each study seeing the serving version's output, which can favour it over shadow versions.",
)


@dataclass(frozen=True)
class ReviewedPrediction:
    """One version's prediction on a study that a radiologist reviewed."""

    study_id: uuid.UUID
    probability: float
    predicted_positive: bool
    truth_positive: bool
    is_shadow: bool


def population_note() -> str:
    """Who the models' performance figures hold for (the sample data is pediatric): shown wherever they appear."""
    return str(settings.PNEUMO_POPULATION_NOTE)


def version_role(model_version: ModelVersion) -> str:
    """``serving``, ``shadow``, or the status of a version that does neither (``registered``, ``retired``)."""
    if model_version.is_serving:
        return ROLE_SERVING
    if model_version.status == ModelVersion.Status.SHADOW:
        return ROLE_SHADOW
    return str(model_version.status)


#: Findings that make no pneumonia call: excluded from agreement, sensitivity, specificity, PPV, NPV and AUC (they
#: are neither positive nor negative truth), and counted explicitly beside the figures.
EXCLUDED_FINDINGS: tuple[tuple[str, str], ...] = (
    (Review.Finding.OTHER_ABNORMALITY.value, "other abnormality"),
    (Review.Finding.NON_DIAGNOSTIC.value, "non-diagnostic"),
)


def excluded_text(excluded: dict[str, int]) -> str:
    """``excluded: 2 other abnormality, 1 non-diagnostic`` (both always named, so a zero is seen as a zero)."""
    return "excluded: " + ", ".join(f"{excluded.get(finding, 0)} {label}" for finding, label in EXCLUDED_FINDINGS)


def _reviewed_predictions_by_version(
    model_versions: list[ModelVersion], since: dt.datetime | None = None
) -> dict[int, list[ReviewedPrediction]]:
    """Each version's predictions (primary and shadow) on studies whose latest review is Normal or Pneumonia."""
    return _reviewed_and_excluded_by_version(model_versions, since)[0]


def _reviewed_and_excluded_by_version(
    model_versions: list[ModelVersion], since: dt.datetime | None = None
) -> tuple[dict[int, list[ReviewedPrediction]], dict[int, dict[str, int]]]:
    """Each version's predictions on reviewed studies (latest review as truth), and per version the number of
    studies left out because their latest review makes no pneumonia call (by finding): one query."""
    latest_finding = (
        Review.objects.filter(study=OuterRef("study_id")).order_by("-created_at", "-id").values("finding")[:1]
    )
    queryset = (
        Prediction.objects.filter(model_version__in=model_versions)
        .annotate(truth=Subquery(latest_finding))
        .filter(truth__isnull=False)
    )
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    rows = queryset.order_by("model_version_id", "study_id").values_list(
        "model_version_id", "study_id", "probability", "label", "truth", "is_shadow"
    )
    positive = Prediction.Label.PNEUMONIA
    grouped: dict[int, list[ReviewedPrediction]] = {version.pk: [] for version in model_versions}
    excluded: dict[int, dict[str, int]] = {
        version.pk: dict.fromkeys(dict(EXCLUDED_FINDINGS), 0) for version in model_versions
    }
    for version_id, study_id, probability, label, truth, is_shadow in rows:
        if truth not in (Review.Finding.NORMAL, Review.Finding.PNEUMONIA):
            excluded[version_id][truth] = excluded[version_id].get(truth, 0) + 1
            continue
        grouped[version_id].append(
            ReviewedPrediction(
                study_id=study_id,
                probability=float(probability),
                predicted_positive=label == positive,
                truth_positive=truth == Review.Finding.PNEUMONIA,
                is_shadow=is_shadow,
            )
        )
    return grouped, excluded


def version_reviewed_predictions(
    *, model_version: ModelVersion, since: dt.datetime | None = None
) -> list[ReviewedPrediction]:
    """This version's predictions (primary and shadow) on reviewed studies, with the latest review as truth."""
    return _reviewed_predictions_by_version([model_version], since)[model_version.pk]


def _rate(successes: int, n: int) -> dict[str, Any]:
    """``{"value", "ci95": (low, high), "k", "n"}``; value None when there is nothing to divide by."""
    return {"value": successes / n if n else None, "ci95": wilson_interval(successes, n), "k": successes, "n": n}


def _confusion(rows: list[ReviewedPrediction]) -> dict[str, int]:
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for row in rows:
        key = ("t" if row.predicted_positive == row.truth_positive else "f") + ("p" if row.predicted_positive else "n")
        counts[key] += 1
    return counts


def _auc(rows: list[ReviewedPrediction]) -> float | None:
    truth = [row.truth_positive for row in rows]
    if all(truth) or not any(truth):
        return None
    return roc_auc(truth, [row.probability for row in rows])


def version_live_performance(*, model_version: ModelVersion, since: dt.datetime | None = None) -> dict[str, Any]:
    """Agreement, sensitivity, specificity, PPV, NPV (each with a Wilson 95 % CI) and AUC on reviewed studies.

    ``n_reviewed`` and every rate count only studies reviewed Normal or Pneumonia; those reviewed "Other
    abnormality" or "Non-diagnostic image" are in ``excluded`` (by finding), ``n_excluded`` and ``excluded_text``.
    Each rate is ``{"value": float | None, "ci95": (low, high), "k": int, "n": int}``; ``auc`` is None unless both
    findings are present.
    """
    grouped, excluded = _reviewed_and_excluded_by_version([model_version], since)
    return _live_performance(model_version, grouped[model_version.pk], since, excluded[model_version.pk])


def versions_live_performance(*, model_versions: list[ModelVersion]) -> dict[int, dict[str, Any]]:
    """:func:`version_live_performance` of each version (by primary key), in one query for all of them."""
    grouped, excluded = _reviewed_and_excluded_by_version(model_versions)
    return {
        version.pk: _live_performance(version, grouped[version.pk], None, excluded[version.pk])
        for version in model_versions
    }


def _live_performance(
    model_version: ModelVersion,
    rows: list[ReviewedPrediction],
    since: dt.datetime | None,
    excluded: dict[str, int],
) -> dict[str, Any]:
    c = _confusion(rows)
    n = len(rows)
    return {
        "version": model_version.version,
        "role": version_role(model_version),
        "status": str(model_version.status),
        "traffic_share": model_version.traffic_share,
        "threshold": model_version.threshold,
        "calibrated": model_version.is_calibrated,
        "validated": model_version.validated,
        "since": since.isoformat() if since else None,
        "n_reviewed": n,
        "n_positive": c["tp"] + c["fn"],
        "n_negative": c["tn"] + c["fp"],
        # Reviewed studies whose finding makes no pneumonia call: not in any rate, counted here (by finding).
        "excluded": dict(excluded),
        "n_excluded": sum(excluded.values()),
        "excluded_text": excluded_text(excluded),
        "confusion": c,
        "agreement": _rate(c["tp"] + c["tn"], n),
        "sensitivity": _rate(c["tp"], c["tp"] + c["fn"]),
        "specificity": _rate(c["tn"], c["tn"] + c["fp"]),
        "ppv": _rate(c["tp"], c["tp"] + c["fp"]),
        "npv": _rate(c["tn"], c["tn"] + c["fn"]),
        "auc": _auc(rows),
        "population_note": population_note(),
    }


# --- A/B report -------------------------------------------------------------------------------------------------


def ab_default_versions() -> list[ModelVersion]:
    """Serving versions (largest share first), then shadow versions (oldest first)."""
    serving = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, traffic_share__gt=0).order_by(
        "-traffic_share", "id"
    )
    shadows = ModelVersion.objects.filter(status=ModelVersion.Status.SHADOW).order_by("id")
    return [*serving, *shadows]


def format_p_value(p: float) -> str:
    """``0.48``, ``0.003``, ``< 0.001``: two significant figures, never rounded across the 5 % line."""
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.2g}"
    if (float(text) < SIGNIFICANCE_LEVEL) != (p < SIGNIFICANCE_LEVEL):
        text = f"{p:.3g}"
    return f"= {text}"


def _paired_test(first_correct: np.ndarray, second_correct: np.ndarray) -> dict[str, Any]:
    only_first = int(np.sum(first_correct & ~second_correct))
    only_second = int(np.sum(~first_correct & second_correct))
    return {
        "n": int(first_correct.size),
        "first_correct": int(first_correct.sum()),
        "second_correct": int(second_correct.sum()),
        "only_first_correct": only_first,
        "only_second_correct": only_second,
        "p_value": mcnemar_exact(only_first, only_second),
    }


def _class_comparison(truth: np.ndarray, first: np.ndarray, second: np.ndarray, positive: bool) -> dict[str, Any]:
    """Sensitivity (positives) or specificity (negatives) of both versions on the same studies, McNemar-tested."""
    mask = truth == positive
    test = _paired_test(first[mask] == positive, second[mask] == positive)
    n = test["n"]
    first_rate: float | None = None
    second_rate: float | None = None
    difference: float | None = None
    if n:
        first_rate = test["first_correct"] / n
        second_rate = test["second_correct"] / n
        difference = first_rate - second_rate
    return {**test, "first": first_rate, "second": second_rate, "difference": difference}


def _statement(first: str, second: str, test: dict[str, Any]) -> str:
    n, k1, k2, p = test["n"], test["first_correct"], test["second_correct"], test["p_value"]
    if n < AB_MIN_PAIRED_STUDIES:
        return (
            f"{first} vs {second}: too few reviewed studies to compare (n = {n}; at least "
            f"{AB_MIN_PAIRED_STUDIES} needed)."
        )
    opening = f"On {n} studies reviewed by radiologists, "
    if test["only_first_correct"] + test["only_second_correct"] == 0:
        return opening + f"{first} and {second} made the same call on every study ({k1}/{n} correct): no difference."
    if p < SIGNIFICANCE_LEVEL:
        better, worse, kb, kw = (first, second, k1, k2) if k1 > k2 else (second, first, k2, k1)
        return (
            opening + f"{better} is correct significantly more often than {worse} ({kb}/{n} vs {kw}/{n}; "
            f"McNemar p {format_p_value(p)})."
        )
    return (
        opening + f"{first} ({k1}/{n}) and {second} ({k2}/{n}) agree with the radiologist about equally often "
        f"(McNemar p {format_p_value(p)}): no significant difference at the 5 % level."
    )


def ab_compare(
    first: ModelVersion,
    second: ModelVersion,
    first_rows: list[ReviewedPrediction],
    second_rows: list[ReviewedPrediction],
) -> dict[str, Any]:
    """Paired comparison of two versions on the reviewed studies both predicted."""
    by_study = {row.study_id: row for row in second_rows}
    pairs = [(row, by_study[row.study_id]) for row in first_rows if row.study_id in by_study]
    truth = np.array([a.truth_positive for a, _ in pairs], dtype=bool)
    first_pred = np.array([a.predicted_positive for a, _ in pairs], dtype=bool)
    second_pred = np.array([b.predicted_positive for _, b in pairs], dtype=bool)
    overall = _paired_test(first_pred == truth, second_pred == truth)
    return {
        "first": first.version,
        "second": second.version,
        **overall,
        "significant": overall["n"] >= AB_MIN_PAIRED_STUDIES and overall["p_value"] < SIGNIFICANCE_LEVEL,
        "sensitivity": _class_comparison(truth, first_pred, second_pred, True),
        "specificity": _class_comparison(truth, first_pred, second_pred, False),
        "statement": _statement(first.version, second.version, overall),
    }


def ab_report(*, versions: list[ModelVersion] | None = None) -> dict[str, Any]:
    """Versions side by side on the same reviewed studies: live performance, paired comparisons, score drift.

    ``versions`` defaults to the serving versions then the shadow versions.
    """
    chosen = list(versions) if versions is not None else ab_default_versions()
    rows = {mv.pk: version_reviewed_predictions(model_version=mv) for mv in chosen}
    pairs = [ab_compare(a, b, rows[a.pk], rows[b.pk]) for a, b in itertools.combinations(chosen, 2)]
    drift = [score_drift(model_version=mv) for mv in chosen]
    caveats = [population_note(), *PERFORMANCE_CAVEATS]
    if len(pairs) > 1:
        caveats.append(f"{len(pairs)} comparisons: p-values are not adjusted for multiple comparisons.")
    if any(d["drifted"] for d in drift):
        caveats.append(DRIFT_NOTE)
    return {
        "generated_at": timezone.now().isoformat(),
        "versions": [version_live_performance(model_version=mv) for mv in chosen],
        "pairs": pairs,
        "drift": drift,
        "significance_level": SIGNIFICANCE_LEVEL,
        "min_paired_studies": AB_MIN_PAIRED_STUDIES,
        "population_note": population_note(),
        "caveats": caveats,
    }


# --- Score drift ------------------------------------------------------------------------------------------------


def _window_start(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def score_drift(
    *, model_version: ModelVersion, window_days: int = 7, bins: int = 10, limit: float | None = None
) -> dict[str, Any]:
    """PSI of this version's predicted probabilities, per window of ``window_days``, against its validation scores.

    ``drifted`` is True when the latest window with at least ``DRIFT_MIN_WINDOW_PREDICTIONS`` predictions has a PSI
    above ``limit`` (default ``settings.PNEUMO_PSI_LIMIT``). ``message`` says it in a sentence.
    """
    moments = (
        Prediction.objects.filter(model_version=model_version)
        .order_by("created_at")
        .values_list("created_at", "probability")
    )
    return _score_drift(
        model_version, list(moments.iterator(chunk_size=5000)), window_days=window_days, bins=bins, limit=limit
    )


def versions_score_drift(*, model_versions: list[ModelVersion]) -> dict[int, dict[str, Any]]:
    """:func:`score_drift` (default windows and limit) of each version, by primary key, in one query."""
    moments: dict[int, list[tuple[dt.datetime, float]]] = {version.pk: [] for version in model_versions}
    with_baseline = [version for version in model_versions if version.validation_scores]
    rows = (
        Prediction.objects.filter(model_version__in=with_baseline)
        .order_by("created_at")
        .values_list("model_version_id", "created_at", "probability")
    )
    for version_id, created_at, probability in rows.iterator(chunk_size=5000):
        moments[version_id].append((created_at, probability))
    return {version.pk: _score_drift(version, moments[version.pk]) for version in model_versions}


def _score_drift(
    model_version: ModelVersion,
    moments: list[tuple[dt.datetime, float]],
    *,
    window_days: int = 7,
    bins: int = 10,
    limit: float | None = None,
) -> dict[str, Any]:
    if window_days < 1:
        raise ValueError(f"window_days must be >= 1. Received: {window_days}")
    limit = float(settings.PNEUMO_PSI_LIMIT if limit is None else limit)
    baseline = [float(s) for s in (model_version.validation_scores or [])]
    result: dict[str, Any] = {
        "version": model_version.version,
        "limit": limit,
        "window_days": window_days,
        "bins": bins,
        "baseline_n": len(baseline),
        "windows": [],
        "latest_psi": None,
        "drifted": False,
        "note": DRIFT_NOTE,
    }
    if not baseline:
        result["message"] = f"{model_version.version}: no validation baseline, so score drift cannot be measured."
        return result
    grouped: dict[int, list[float]] = defaultdict(list)
    # Windows start at midnight UTC of the first prediction (no prediction: no window, the origin is unused).
    origin = _window_start(moments[0][0]) if moments else dt.datetime.now(dt.UTC)
    for created_at, probability in moments:
        grouped[(created_at - origin).days // window_days].append(float(probability))
    for index, scores in sorted(grouped.items()):
        start = origin + dt.timedelta(days=index * window_days)
        psi = (
            population_stability_index(baseline, scores, bins=bins)
            if len(scores) >= DRIFT_MIN_WINDOW_PREDICTIONS
            else None
        )
        result["windows"].append(
            {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(days=window_days)).isoformat(),
                "n": len(scores),
                "mean_score": float(np.mean(scores)),
                "psi": psi,
                "drifted": psi is not None and psi > limit,
            }
        )
    evaluable = [w for w in result["windows"] if w["psi"] is not None]
    if evaluable:
        latest = evaluable[-1]
        result["latest_psi"], result["drifted"] = latest["psi"], latest["drifted"]
    result["message"] = _drift_message(model_version.version, result, evaluable)
    return result


def _drift_message(name: str, result: dict[str, Any], evaluable: list[dict[str, Any]]) -> str:
    limit = result["limit"]
    if not evaluable:
        return (
            f"{name}: not enough predictions yet to measure score drift (a window needs "
            f"{DRIFT_MIN_WINDOW_PREDICTIONS})."
        )
    latest = evaluable[-1]
    if latest["drifted"]:
        return (
            f"WARNING: {name}'s scores from {latest['start'][:10]} on have drifted from its validation scores "
            f"(PSI {latest['psi']:.2f} > limit {limit:.2f}). The patients, the equipment or the image processing "
            "may have changed: check before relying on this version."
        )
    return f"{name}: no score drift past the limit (latest PSI {latest['psi']:.2f} <= {limit:.2f})."
