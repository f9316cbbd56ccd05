"""Live metrics and the A/B report (issue 10): "Other abnormality" and "Non-diagnostic image" make no pneumonia call,
so they are in no rate (agreement, sensitivity, specificity, PPV, NPV, AUC) and are counted explicitly."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from diagnosis.models import ModelVersion
from diagnosis.selectors.performance import ab_report, version_live_performance, versions_live_performance
from tests.lifecycle.conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed_mix(v3: ModelVersion, reviewed_study: Callable[..., Any]) -> ModelVersion:
    """v3 on 2 pneumonia (1 caught), 2 normal (both right), 1 other abnormality, 2 non-diagnostic, 1 unreviewed."""
    reviewed_study("PNEUMONIA", {v3: 0.9})
    reviewed_study("PNEUMONIA", {v3: 0.2})
    reviewed_study("NORMAL", {v3: 0.1})
    reviewed_study("NORMAL", {v3: 0.3})
    # The model said pneumonia on all three: counted as errors, they would halve its specificity.
    reviewed_study("OTHER_ABNORMALITY", {v3: 0.95})
    reviewed_study("NON_DIAGNOSTIC", {v3: 0.85})
    reviewed_study("NON_DIAGNOSTIC", {v3: 0.7})
    reviewed_study(None, {v3: 0.6})
    return v3


def test_live_performance_excludes_and_counts_findings_without_a_pneumonia_call(reviewed_mix: ModelVersion) -> None:
    live = version_live_performance(model_version=reviewed_mix)

    assert (live["n_reviewed"], live["n_positive"], live["n_negative"]) == (4, 2, 2)
    assert live["excluded"] == {"OTHER_ABNORMALITY": 1, "NON_DIAGNOSTIC": 2}
    assert live["n_excluded"] == 3
    assert live["excluded_text"] == "excluded: 1 other abnormality, 2 non-diagnostic"
    assert (live["sensitivity"]["k"], live["sensitivity"]["n"]) == (1, 2)
    assert (live["specificity"]["k"], live["specificity"]["n"]) == (2, 2)
    assert (live["agreement"]["k"], live["agreement"]["n"]) == (3, 4)
    assert live["auc"] == pytest.approx(0.75)  # on the 4 pneumonia-call studies only
    # The batched version (admin changelist) says the same.
    assert (
        versions_live_performance(model_versions=[reviewed_mix])[reviewed_mix.pk]["excluded_text"]
        == (live["excluded_text"])
    )


def test_the_ab_report_excludes_them_from_the_paired_comparison_and_prints_the_counts(
    reviewed_mix: ModelVersion,
) -> None:
    report = ab_report(versions=[reviewed_mix, make_version("v4", status=ModelVersion.Status.SHADOW)])
    assert report["versions"][0]["excluded_text"] == "excluded: 1 other abnormality, 2 non-diagnostic"
    assert report["pairs"][0]["n"] == 0  # v4 predicted none of them; nothing excluded sneaks in

    out = io.StringIO()
    call_command("ab_report", "--version", "v3", stdout=out)
    printed = out.getvalue()
    assert "reviewed studies: 4 (2 pneumonia, 2 normal)" in printed
    assert "  excluded: 1 other abnormality, 2 non-diagnostic" in printed


def test_a_version_with_no_excluded_reviews_says_zero(v3: ModelVersion, reviewed_study: Callable[..., Any]) -> None:
    reviewed_study("NORMAL", {v3: 0.1})
    assert (
        version_live_performance(model_version=v3)["excluded_text"] == "excluded: 0 other abnormality, 0 non-diagnostic"
    )


def test_the_admin_version_page_and_ab_report_show_the_excluded_counts(
    reviewed_mix: ModelVersion, admin_user: Any
) -> None:
    client = Client()
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    version_page = client.get(reverse("admin:diagnosis_modelversion_change", args=[reviewed_mix.pk])).content.decode()
    ab_page = client.get(reverse("admin:diagnosis_modelversion_ab_report")).content.decode()
    for page in (version_page, ab_page):
        assert "excluded: 1 other abnormality, 2 non-diagnostic" in page
