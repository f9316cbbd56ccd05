"""Live performance, the A/B report and score drift, checked against sklearn and hand formulas; shadow stays hidden."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from sklearn.metrics import confusion_matrix, roc_auc_score

from diagnosis.models import ModelVersion
from diagnosis.selectors.performance import ab_report, score_drift, version_live_performance
from tests.lifecycle.conftest import make_version

pytestmark = pytest.mark.django_db


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _population(
    reviewed_study: Callable[..., Any],
    serving: ModelVersion,
    shadow: ModelVersion | None,
    n: int,
    seed: int,
    shadow_better: bool = False,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    a = np.clip(rng.normal(0.35 + 0.3 * truth, 0.2), 0.001, 0.999)
    b = np.clip(rng.normal(0.25 + 0.5 * truth, 0.1 if shadow_better else 0.25), 0.001, 0.999)
    for t, pa, pb in zip(truth, a, b, strict=True):
        reviewed_study(
            "PNEUMONIA" if t else "NORMAL",
            {serving: float(pa)},
            shadow={shadow: float(pb)} if shadow is not None else None,
        )
    return {"truth": truth, "a": a, "b": b}


def test_live_performance_matches_sklearn_with_wilson_intervals(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    data = _population(reviewed_study, v3, None, n=80, seed=7)
    reviewed_study(None, {v3: 0.9})  # unreviewed: not counted
    perf = version_live_performance(model_version=v3)

    y, scores = data["truth"], data["a"]
    tn, fp, fn, tp = confusion_matrix(y, scores >= v3.threshold).ravel()
    assert perf["n_reviewed"] == 80 and perf["role"] == "serving"
    assert perf["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    expected = {
        "agreement": (tp + tn, 80),
        "sensitivity": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "ppv": (tp, tp + fp),
        "npv": (tn, tn + fn),
    }
    for name, (k, n) in expected.items():
        assert perf[name]["value"] == pytest.approx(k / n), name
        np.testing.assert_allclose(perf[name]["ci95"], wilson(k, n), atol=1e-5, err_msg=name)
    assert perf["auc"] == pytest.approx(roc_auc_score(y, scores))


def test_live_performance_has_no_auc_or_specificity_without_normal_reviews(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    for p in (0.2, 0.7, 0.9):
        reviewed_study("PNEUMONIA", {v3: p})
    perf = version_live_performance(model_version=v3)
    assert perf["auc"] is None and perf["specificity"]["value"] is None and perf["specificity"]["ci95"] == (0.0, 1.0)
    assert perf["sensitivity"]["value"] == pytest.approx(2 / 3)


def test_shadow_versions_are_judged_against_the_same_reviews(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW, threshold=0.5)
    data = _population(reviewed_study, v3, v4, n=50, seed=3)
    perf = version_live_performance(model_version=v4)
    tn, fp, fn, tp = confusion_matrix(data["truth"], data["b"] >= 0.5).ravel()
    assert perf["role"] == "shadow" and perf["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert perf["auc"] == pytest.approx(roc_auc_score(data["truth"], data["b"]))


def test_ab_report_says_when_the_shadow_is_significantly_better(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW)
    # Constructed: 60 studies both get right, 2 only v3 gets right, 16 only v4 gets right.
    for i in range(60):
        reviewed_study(
            "PNEUMONIA" if i % 2 else "NORMAL", {v3: 0.9 if i % 2 else 0.1}, shadow={v4: 0.9 if i % 2 else 0.1}
        )
    for _ in range(2):
        reviewed_study("PNEUMONIA", {v3: 0.9}, shadow={v4: 0.1})
    for _ in range(16):
        reviewed_study("PNEUMONIA", {v3: 0.1}, shadow={v4: 0.9})
    report = ab_report()
    (pair,) = report["pairs"]
    assert (pair["first"], pair["second"], pair["n"]) == ("v3", "v4", 78)
    assert (pair["only_first_correct"], pair["only_second_correct"]) == (2, 16)
    expected_p = 2 * (1 + 18 + 153) / 2**18  # two-sided exact binomial tail, k <= 2 of 18
    assert pair["p_value"] == pytest.approx(expected_p) and pair["significant"]
    assert pair["statement"] == (
        "On 78 studies reviewed by radiologists, v4 is correct significantly more often than v3 (76/78 vs 62/78; "
        "McNemar p = 0.0013)."
    )
    assert pair["sensitivity"]["difference"] == pytest.approx(32 / 48 - 46 / 48)
    assert [v["version"] for v in report["versions"]] == ["v3", "v4"]
    assert any("pediatric" in caveat for caveat in report["caveats"])


def test_ab_report_says_plainly_when_there_is_no_significant_difference(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW)
    for _ in range(40):
        reviewed_study("NORMAL", {v3: 0.1}, shadow={v4: 0.1})
    for _ in range(5):
        reviewed_study("NORMAL", {v3: 0.1}, shadow={v4: 0.9})
    for _ in range(3):
        reviewed_study("NORMAL", {v3: 0.9}, shadow={v4: 0.1})
    (pair,) = ab_report()["pairs"]
    expected_p = 2 * (1 + 8 + 28 + 56) / 2**8
    assert pair["p_value"] == pytest.approx(expected_p) and not pair["significant"]
    assert pair["statement"] == (
        "On 48 studies reviewed by radiologists, v3 (45/48) and v4 (43/48) agree with the radiologist about equally "
        f"often (McNemar p = {expected_p:.2g}): no significant difference at the 5 % level."
    )


def test_ab_report_declines_to_compare_on_a_handful_of_studies(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    v4 = make_version("v4", status=ModelVersion.Status.SHADOW)
    for _ in range(7):
        reviewed_study("NORMAL", {v3: 0.1}, shadow={v4: 0.9})
    reviewed_study("NORMAL", {v3: 0.1})  # v4 did not predict here: not paired
    (pair,) = ab_report(versions=[v3, v4])["pairs"]
    assert "too few reviewed studies to compare (n = 7" in pair["statement"] and not pair["significant"]


def test_score_drift_warns_when_live_scores_shift_from_validation(
    v3: ModelVersion, reviewed_study: Callable[..., Any]
) -> None:
    rng = np.random.default_rng(0)
    baseline = rng.beta(2, 5, 500).tolist()
    ModelVersion.objects.filter(pk=v3.pk).update(validation_scores=baseline)
    v3.refresh_from_db()
    week1 = timezone.now() - dt.timedelta(days=10)
    week2 = timezone.now() - dt.timedelta(days=1)
    for p in rng.beta(2, 5, 60):
        reviewed_study(None, {v3: float(p)}, created_at=week1)
    shifted = rng.beta(5, 2, 60)  # a new scanner: scores pushed up
    for p in shifted:
        reviewed_study(None, {v3: float(p)}, created_at=week2)

    drift = score_drift(model_version=v3, window_days=7)
    assert [w["n"] for w in drift["windows"]] == [60, 60]
    first, second = drift["windows"]
    assert first["psi"] < 0.2 < second["psi"] and drift["drifted"] and second["drifted"]
    # Independent PSI: baseline deciles, shares with a 1e-4 floor.
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, 11)[1:-1]))
    e = np.maximum(np.bincount(np.searchsorted(edges, baseline, "right"), minlength=edges.size + 1) / 500, 1e-4)
    a = np.maximum(np.bincount(np.searchsorted(edges, shifted, "right"), minlength=edges.size + 1) / 60, 1e-4)
    assert second["psi"] == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert drift["message"].startswith("WARNING: v3's scores") and "> limit 0.20" in drift["message"]
    assert not score_drift(model_version=v3, limit=second["psi"] + 1)["drifted"]


def test_score_drift_without_a_validation_baseline_says_so(v3: ModelVersion) -> None:
    drift = score_drift(model_version=v3)
    assert not drift["drifted"] and "no validation baseline" in drift["message"]


def test_shadow_predictions_never_reach_the_api_or_the_study_page(
    v3: ModelVersion, reviewed_study: Callable[..., Any], radiologist_client: Any
) -> None:
    v4 = make_version("v4-shadow", status=ModelVersion.Status.SHADOW)
    study = reviewed_study(None, {v3: 0.123}, shadow={v4: 0.987})

    (item,) = radiologist_client.get("/api/v1/studies/").json()["results"]
    detail = radiologist_client.get(f"/api/v1/studies/{study.id}/").json()
    for body in (item, detail):
        assert body["prediction"]["model_version"] == "v3" and body["prediction"]["probability"] == 0.123
        assert "v4-shadow" not in str(body) and "0.987" not in str(body)
    # The worklist's label filter reads the primary prediction only (the shadow said PNEUMONIA, the primary NORMAL).
    assert radiologist_client.get("/api/v1/studies/", {"label": "PNEUMONIA"}).json()["results"] == []
    response = radiologist_client.get(reverse("dashboard:study", args=[study.id]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "v4-shadow" not in page and "0.987" not in page and "98.7" not in page
