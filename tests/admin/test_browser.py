"""The lifecycle admin in a real browser (Debian's headless Chromium through Playwright's sync API).

The numbers on the pages are checked against values this test computes itself from the rows it created:
sensitivity, specificity and agreement with sklearn, their 95 % intervals with the Wilson formula written out
here, and the A/B significance with scipy's exact binomial test (McNemar on the discordant pairs).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, confusion_matrix

from diagnosis.models import ModelVersion, TrainingRun
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import model_version_activate
from tests.admin.conftest import reviewed_prediction
from tests.browser_support import screenshot, wait_until, watch_csp_violations
from tests.factories import TEST_PASSWORD, AdminFactory, ModelVersionFactory, RadiologistFactory

pytestmark = pytest.mark.browser

N_STUDIES = 40


# --- Independent arithmetic ---------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval, written out (Wilson 1927)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def shown(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k / n:.3f} (95% CI {low:.3f}–{high:.3f})"


def expected_rates(truth: list[int], scores: list[float], threshold: float) -> dict[str, str]:
    predicted = [int(s >= threshold) for s in scores]
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    agreement = accuracy_score(truth, predicted)
    assert math.isclose(agreement, (tp + tn) / len(truth))
    return {
        "agreement": shown(int(tp + tn), len(truth)),
        "sensitivity": shown(int(tp), int(tp + fn)),
        "specificity": shown(int(tn), int(tn + fp)),
    }


# --- Data --------------------------------------------------------------------------------------------------------


@pytest.fixture
def lifecycle(transactional_db: None, validated_artifact: Path) -> dict[str, Any]:
    for name in ("radiologist", "integrator"):  # transactional_db flushed the data migration's groups
        Group.objects.get_or_create(name=name)
    admin = AdminFactory(username="ada.admin", first_name="Ada", last_name="Admin")
    serving = model_version_register(path=validated_artifact, version="resnet50-v7", actor=admin)
    serving = model_version_activate(model_version=serving, actor=admin)
    shadow = ModelVersionFactory(
        version="resnet50-v8-candidate",
        status=ModelVersion.Status.SHADOW,
        traffic_share=0,
        threshold=0.6,
        threshold_method={"method": "target_sensitivity", "target": 0.95, "on": "validation", "n": 200},
        validation_scores=[i / 100 for i in range(60)],  # validated on low scores: its live scores drift up
    )
    rng = np.random.default_rng(7)
    truth = [int(i % 5 in (0, 1)) for i in range(N_STUDIES)]  # 16 pneumonia, 24 normal
    serving_scores = [float(np.clip(0.72 * t + 0.14 + rng.normal(0, 0.17), 0.01, 0.99)) for t in truth]
    shadow_scores = [float(np.clip(0.35 * t + 0.5 + rng.normal(0, 0.12), 0.01, 0.99)) for t in truth]
    # The serving version sees the scores it was validated on (no drift); the shadow's scores moved up (drift).
    ModelVersion.objects.filter(pk=serving.pk).update(validation_scores=serving_scores * 3)
    radiologist = RadiologistFactory(username="rita.radiologist")
    for label, s1, s2 in zip(truth, serving_scores, shadow_scores, strict=True):
        study = reviewed_prediction(serving, s1, "PNEUMONIA" if label else "NORMAL", reviewer=radiologist).study
        reviewed_prediction(shadow, s2, "", study=study, is_shadow=True)
    run = TrainingRun.objects.create(
        data_dir="/data/kermany",
        version="resnet50-v9",
        status=TrainingRun.Status.RUNNING,
        phase=1,
        epoch=6,
        epochs=15,
        val_auc=0.9412,
        best_val_auc=0.9467,
        seconds_per_epoch=287.0,
        eta_seconds=8610.0,
        created_by=admin,
        started_at=timezone.now(),
        progress_log=[
            {
                "phase": 1,
                "epoch": e,
                "epochs": 15,
                "loss": 0.6 / e,
                "val_auc": auc,
                "seconds": 287.0,
                "at": f"2026-11-26T09:{e * 5:02d}:00+00:00",
            }
            for e, auc in enumerate([0.881, 0.905, 0.921, 0.9467, 0.933, 0.9412], start=1)
        ],
    )
    return {
        "admin": admin,
        "serving": serving,
        "shadow": shadow,
        "truth": truth,
        "serving_scores": serving_scores,
        "shadow_scores": shadow_scores,
        "run": run,
    }


def log_in(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/admin/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/"))
    page.get_by_label("Username").fill("ada.admin")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/admin/")


def cell(page: Any, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


# --- Test ---------------------------------------------------------------------------------------------------------


def test_admin_reviews_versions_and_the_ab_report_and_cancels_a_training_run(
    live_server: Any, page: Any, lifecycle: dict[str, Any]
) -> None:
    serving, shadow, truth = lifecycle["serving"], lifecycle["shadow"], lifecycle["truth"]
    csp_violations = watch_csp_violations(page)
    log_in(page, live_server.url)

    page.goto(live_server.url + reverse("admin:diagnosis_modelversion_changelist"))
    serving_row = page.locator("#result_list tr", has_text="resnet50-v7")
    assert "active" in serving_row.inner_text().lower() and "100 %" in serving_row.inner_text()
    assert "drift" not in serving_row.inner_text().lower()
    agreement = accuracy_score(truth, [int(s >= serving.threshold) for s in lifecycle["serving_scores"]])
    assert f"{agreement:.3f} (n = {N_STUDIES})" in serving_row.inner_text()
    assert "drift: psi" in page.locator("#result_list tr", has_text="resnet50-v8-candidate").inner_text().lower()
    screenshot(page, "admin-versions.png")

    # The version page: validation metrics with intervals from the artifact, live rates computed here.
    serving_row.get_by_role("link", name="resnet50-v7").click()
    page.wait_for_url(re.compile(r"/modelversion/\d+/change/$"))
    wait_until(
        page, "Array.from(document.querySelectorAll('#plots img')).every(img => img.complete && img.naturalWidth > 0)"
    )
    assert page.locator("#plots img").count() == 2
    assert cell(page, "#validation-metrics tr[data-metric='AUC-ROC'] td") == "0.973 (95% CI 0.958–0.986)"
    assert cell(page, "#validation-metrics tr[data-metric='Sensitivity'] td") == "0.955 (95% CI 0.925–0.980)"
    live = expected_rates(truth, lifecycle["serving_scores"], serving.threshold)
    for key, text in live.items():
        assert cell(page, f"#live-performance tr[data-live='{key}'] td:nth-child(2)") == text, key
    assert "target sensitivity of 95% on validation" in cell(page, "#threshold-method")
    assert "Kermany pediatric" in cell(page, "#version-population")
    assert "Performance on adults is not established" in page.locator("#population-note").inner_text()
    screenshot(page, "admin-version.png")

    # The A/B report: both versions on the same 40 reviewed studies, and a drift warning for the shadow.
    page.goto(live_server.url + reverse("admin:diagnosis_modelversion_ab_report"))
    for version, scores in ((serving, lifecycle["serving_scores"]), (shadow, lifecycle["shadow_scores"])):
        expected = expected_rates(truth, scores, version.threshold)
        for key, text in expected.items():
            assert cell(page, f"#ab-table tr[data-version='{version.version}'] td[data-live='{key}']").startswith(
                text
            ), (version.version, key)
    serving_right = [int(s >= serving.threshold) == t for s, t in zip(lifecycle["serving_scores"], truth, strict=True)]
    shadow_right = [int(s >= shadow.threshold) == t for s, t in zip(lifecycle["shadow_scores"], truth, strict=True)]
    only_serving = sum(a and not b for a, b in zip(serving_right, shadow_right, strict=True))
    only_shadow = sum(b and not a for a, b in zip(serving_right, shadow_right, strict=True))
    p_value = binomtest(min(only_serving, only_shadow), only_serving + only_shadow, 0.5).pvalue
    statement = cell(page, ".ab-pair .ab-statement")
    assert f"On {N_STUDIES} studies reviewed by radiologists" in statement
    if p_value < 0.05:
        assert statement.startswith("Significant difference.")
    else:
        assert statement.startswith("No significant difference.")
    assert f"only resnet50-v7 correct: {only_serving}" in cell(page, ".ab-pair")
    warning = page.locator(".drift-warning[data-version='resnet50-v8-candidate']")
    assert warning.is_visible() and "have drifted from its validation scores" in warning.inner_text()
    assert page.locator(".drift-warning[data-version='resnet50-v7']").count() == 0
    screenshot(page, "admin-ab-report.png")

    # Traffic: one share per calibrated version; the page adds them up as they are typed.
    page.goto(live_server.url + reverse("admin:diagnosis_modelversion_traffic"))
    assert cell(page, "#traffic-total") == "100 %"
    page.get_by_label("Share of resnet50-v7").fill("90")
    assert cell(page, "#traffic-total") == "90 %"
    page.get_by_label("Share of resnet50-v8-candidate").fill("10")
    assert cell(page, "#traffic-total") == "100 %"
    assert csp_violations == []  # every admin page so far ran under the Content-Security-Policy
    screenshot(page, "admin-traffic.png")
    page.locator("#traffic-submit").click()
    page.locator(".messagelist").wait_for()
    assert "Traffic set: resnet50-v7 90 %, resnet50-v8-candidate 10 %" in page.locator(".messagelist").inner_text()

    page.goto(live_server.url + reverse("admin:diagnosis_modelversion_register"))
    assert page.get_by_label("Artifact path").is_visible()
    screenshot(page, "admin-register.png")
    page.goto(live_server.url + reverse("admin:diagnosis_trainingrun_add"))
    # Issue 10: the form opens on the quick CPU preset; the full run is one click away.
    assert page.get_by_label("Data folder").is_visible() and page.get_by_label("Image size (px)").input_value() == "224"
    page.locator("#preset-full").click()
    page.wait_for_url(re.compile(r"\?preset=full$"))
    assert page.get_by_label("Image size (px)").input_value() == "384"
    assert page.get_by_label("Phase 2 epochs (fine-tuning)").input_value() == "20"
    screenshot(page, "admin-training-add.png")

    # A training run in progress: its progress, then Cancel.
    run = lifecycle["run"]
    page.goto(live_server.url + reverse("admin:diagnosis_trainingrun_change", args=[run.pk]))
    assert "phase 1/2, epoch 6/15" in cell(page, "#run-progress-text")
    assert cell(page, "#run-val-auc") == "0.941 (best 0.947)"
    assert "at most 2 h 23 min" in cell(page, "#run-eta")
    screenshot(page, "admin-training-run.png")
    page.locator("#cancel-run").click()
    page.locator(".messagelist").wait_for()
    assert "Cancel requested" in page.locator(".messagelist").inner_text()
    run.refresh_from_db()
    assert run.cancel_requested
    screenshot(page, "admin-training-run-cancelled.png")
