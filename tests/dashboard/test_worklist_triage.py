"""The worklist as a triage tool: tabs, search, whitelisted sort, row facts, thumbnails, empty state, query count."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from diagnosis.models import ModelVersion, Study
from diagnosis.selectors.worklist import SCOPES, age_display, waiting, worklist_sort, worklist_studies
from tests.factories import ModelVersionFactory, PredictionFactory, ReviewFactory, StudyFactory

pytestmark = pytest.mark.django_db


def row_ids(html: str) -> list[str]:
    return re.findall(r'data-study-id="([0-9a-f-]{36})"', html)


def ids(queryset: Any) -> set[str]:
    return {str(study.id) for study in queryset}


@pytest.fixture
def triage(serving_model_version: ModelVersion, radiologist: Any, other_radiologist: Any) -> dict[str, Study]:
    now = timezone.now()
    studies = {
        "awaiting": PredictionFactory(study__created_at=now - timedelta(minutes=5)).study,
        "mine": PredictionFactory(study__patient_id="MRN-4242").study,
        "theirs": PredictionFactory(study__accession_number="ACC-TRIAGE-9").study,
        "queued": StudyFactory(),
        "failed": StudyFactory(status=Study.Status.FAILED, error="No pixel data."),
    }
    ReviewFactory(study=studies["mine"], reviewer=radiologist)
    ReviewFactory(study=studies["theirs"], reviewer=other_radiologist)
    return studies


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("awaiting", {"awaiting"}),
        ("mine", {"mine"}),
        ("reviewed", {"mine", "theirs"}),
        ("in_progress", {"queued"}),
        ("failed", {"failed"}),
        ("all", {"awaiting", "mine", "theirs", "queued", "failed"}),
    ],
)
def test_each_scope_selects_its_studies(
    triage: dict[str, Study], radiologist: Any, scope: str, expected: set[str]
) -> None:
    assert scope in SCOPES
    got = ids(worklist_studies(user=radiologist, scope=scope))
    assert got == {str(triage[name].id) for name in expected}


def test_the_worklist_opens_on_awaiting_review(radiologist_web: Client, triage: dict[str, Study]) -> None:
    html = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    assert row_ids(html) == [str(triage["awaiting"].id)]
    assert re.search(r'data-scope="awaiting" aria-current="page"', html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [("mrn-42", "mine"), ("ACC-TRIAGE", "theirs"), ("LOVELACE", "awaiting")],
)
def test_search_finds_patient_id_accession_or_name(
    triage: dict[str, Study], radiologist: Any, query: str, expected: str
) -> None:
    awaiting = triage["awaiting"]
    awaiting.dicom_metadata = {"patient_name": "LOVELACE^ADA"}
    awaiting.save(update_fields=["dicom_metadata"])
    assert ids(worklist_studies(user=radiologist, scope="all", query=query)) == {str(triage[expected].id)}


def test_search_never_widens_what_an_integrator_may_see(triage: dict[str, Study], integrator: Any) -> None:
    assert not worklist_studies(user=integrator, scope="all", query="MRN-4242").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("received", ("received", False)),
        ("-patient", ("patient", True)),
        ("", ("priority", False)),
        ("uploaded_by__password", ("priority", False)),
        ("-id; DROP TABLE", ("priority", False)),
    ],
)
def test_sort_keys_come_from_a_whitelist(value: str, expected: tuple[str, bool]) -> None:
    assert worklist_sort(value) == expected


def test_sorting_orders_the_rows_both_ways(radiologist_web: Client, serving_model_version: ModelVersion) -> None:
    low = PredictionFactory(probability=0.2, study__patient_id="B", study__priority=200).study
    high = PredictionFactory(probability=0.9, study__patient_id="A", study__priority=1900).study
    url = reverse("dashboard:worklist")
    assert row_ids(radiologist_web.get(url, {"sort": "probability"}).content.decode()) == [str(low.id), str(high.id)]
    assert row_ids(radiologist_web.get(url, {"sort": "-probability"}).content.decode()) == [str(high.id), str(low.id)]
    assert row_ids(radiologist_web.get(url, {"sort": "patient"}).content.decode()) == [str(high.id), str(low.id)]
    html = radiologist_web.get(url, {"sort": "password"}).content.decode()  # ignored, not an error
    assert row_ids(html) == [str(high.id), str(low.id)]
    assert 'aria-sort="ascending"' in radiologist_web.get(url, {"sort": "patient"}).content.decode()


def test_the_poll_keeps_the_tab_search_and_sort(radiologist_web: Client, triage: dict[str, Study]) -> None:
    body = radiologist_web.get(reverse("dashboard:worklist_rows"), {"scope": "reviewed", "q": "ACC-TRIAGE"}).json()
    assert body["ids"] == [str(triage["theirs"].id)]
    assert body["show_model_column"] is False


def test_rows_show_age_sex_view_urgency_and_waiting_against_the_target(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory(
        probability=0.9,
        study__created_at=timezone.now() - timedelta(minutes=90),
        study__dicom_metadata={"patient_age": "054Y", "patient_sex": "F", "view_position": "AP"},
    ).study
    with override_settings(PNEUMO_TURNAROUND_TARGET_MINUTES=60):
        html = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    row = html[html.index(f'id="study-{study.id}"') :].split("</tr>")[0]
    assert "54 y · F" in row and ">AP<" in row
    assert "row--urgent" in row and "Urgent" in row
    assert "wait--over" in row and "waiting 1 h 30 min" in row
    assert f'href="{reverse("dashboard:study", kwargs={"study_id": study.id})}"' in row and "row-link" in row


def test_a_reviewed_row_shows_its_turnaround_instead_of_waiting(
    radiologist_web: Client, serving_model_version: ModelVersion, radiologist: Any
) -> None:
    study = PredictionFactory(study__created_at=timezone.now() - timedelta(minutes=25)).study
    ReviewFactory(study=study, reviewer=radiologist)
    html = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "mine"}).content.decode()
    assert re.search(r"turnaround 2[45] min", html)
    assert not re.search(r">waiting \d", html)


def test_waiting_states() -> None:
    now = timezone.now()
    assert waiting(received=now - timedelta(minutes=10), first_review=None, now=now, target_minutes=60).state == "ok"
    assert waiting(received=now - timedelta(minutes=31), first_review=None, now=now, target_minutes=60).state == "near"
    assert waiting(received=now - timedelta(minutes=61), first_review=None, now=now, target_minutes=60).state == "over"
    done = waiting(
        received=now - timedelta(minutes=200), first_review=now - timedelta(minutes=80), now=now, target_minutes=60
    )
    assert (done.state, done.text) == ("done", "turnaround 2 h 00 min")
    assert (age_display("006M"), age_display("54"), age_display("junk")) == ("6 mo", "54 y", "")


def test_the_model_column_appears_only_when_versions_differ(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    PredictionFactory()
    one = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    assert '<col class="col-model">' not in one and 'id="worklist-model"' in one
    other = ModelVersionFactory(version="challenger-v2", traffic_share=0)
    PredictionFactory(study__model_version=other)
    two = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    assert '<col class="col-model">' in two and "challenger-v2" in two


def test_an_empty_worklist_points_to_upload(radiologist_web: Client) -> None:
    html = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    empty = html[html.index('id="worklist-empty"') :]
    assert "Nothing awaits review." in empty
    assert f'href="{reverse("dashboard:upload")}"' in empty and "?scope=all" in empty


def test_the_worklist_query_count_does_not_grow_with_its_rows(
    radiologist_web: Client,
    serving_model_version: ModelVersion,
    radiologist: Any,
    django_assert_num_queries: Any,
) -> None:
    for scope in ("awaiting", "all", "mine"):
        url = reverse("dashboard:worklist") + f"?scope={scope}&sort=-probability&q=P"
        PredictionFactory()
        with CaptureQueriesContext(connection) as few:
            assert radiologist_web.get(url).status_code == 200
        for _ in range(3):
            ReviewFactory(study=PredictionFactory().study, reviewer=radiologist)
            PredictionFactory(study__dicom_metadata={"patient_age": "004Y"})
        StudyFactory.create_batch(2)
        with django_assert_num_queries(len(few.captured_queries)):
            assert radiologist_web.get(url).status_code == 200


def test_a_thumbnail_is_a_small_png_of_the_display_image(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory().study
    response = radiologist_web.get(reverse("dashboard:study_thumbnail", kwargs={"study_id": study.id}))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert max(image.size) <= 96
    rows = radiologist_web.get(reverse("dashboard:worklist_rows")).json()["rows_html"]
    assert 'loading="lazy"' in rows and reverse("dashboard:study_thumbnail", kwargs={"study_id": study.id}) in rows


def test_thumbnails_are_for_those_who_may_see_the_study(
    client: Client, integrator_web: Client, radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    study = PredictionFactory().study
    queued = StudyFactory()
    url = reverse("dashboard:study_thumbnail", kwargs={"study_id": study.id})
    assert client.get(url).status_code == 401
    assert integrator_web.get(url).status_code == 403
    assert radiologist_web.get(reverse("dashboard:study_thumbnail", kwargs={"study_id": queued.id})).status_code == 404
