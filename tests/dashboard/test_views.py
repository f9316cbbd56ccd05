"""Dashboard views through Django's test client: access rules, worklist, study page, reviews, uploads."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnosis.models import AuditEvent, ModelVersion, Review, Study
from tests.factories import TEST_PASSWORD, ModelVersionFactory, PredictionFactory, StudyFactory, png_bytes

pytestmark = pytest.mark.django_db

BANNER = "UNTRAINED / NOT VALIDATED"
ROW_BADGE = 'title="This model is untrained or not validated'


def row_ids(html: str) -> list[str]:
    return re.findall(r'data-study-id="([0-9a-f-]{36})"', html)


def study_url(study: Study) -> str:
    return reverse("dashboard:study", kwargs={"study_id": study.id})


@pytest.fixture
def completed_study(serving_model_version: ModelVersion) -> Study:
    prediction = PredictionFactory(probability=0.91)
    study = prediction.study
    study.dicom_metadata = {"modality": "CR", "body_part_examined": "CHEST", "view_position": "PA"}
    study.save(update_fields=["dicom_metadata"])
    return study


# --- Access --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dashboard:worklist", "dashboard:upload"])
def test_pages_redirect_anonymous_users_to_login(client: Client, name: str) -> None:
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_study_page_redirects_anonymous_users_to_login(client: Client, completed_study: Study) -> None:
    response = client.get(study_url(completed_study))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["dashboard:worklist_rows", "dashboard:upload_file"])
def test_script_endpoints_answer_401_json_to_anonymous_users(client: Client, name: str) -> None:
    response = client.get(reverse(name)) if name.endswith("rows") else client.post(reverse(name))
    assert response.status_code == 401
    assert "log in" in response.json()["detail"]


def test_integrator_gets_a_403_page(integrator_web: Client, completed_study: Study) -> None:
    for url in (reverse("dashboard:worklist"), reverse("dashboard:upload"), study_url(completed_study)):
        response = integrator_web.get(url)
        assert response.status_code == 403
        assert b"The dashboard is for radiologists" in response.content
    assert integrator_web.get(reverse("dashboard:worklist_rows")).status_code == 403
    assert not AuditEvent.objects.filter(action="study.viewed").exists()


def test_staff_may_use_the_dashboard(admin_web: Client, completed_study: Study) -> None:
    assert admin_web.get(reverse("dashboard:worklist")).status_code == 200


def test_login_form_logs_a_radiologist_in_and_lands_on_the_worklist(client: Client, radiologist: Any) -> None:
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'autocomplete="current-password"' in page.content
    response = client.post(reverse("login"), {"username": radiologist.username, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:worklist")
    assert client.get(reverse("dashboard:worklist")).status_code == 200


def test_login_locks_out_after_repeated_failures(client: Client, radiologist: Any) -> None:
    if not settings.AXES_ENABLED:
        pytest.skip("django-axes is disabled")
    for _ in range(settings.PNEUMO_LOGIN_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": radiologist.username, "password": "wrong-password"})
    response = client.post(reverse("login"), {"username": radiologist.username, "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert client.get(reverse("dashboard:worklist")).status_code == 302


def test_logout_is_a_post_and_returns_to_login(radiologist_web: Client) -> None:
    response = radiologist_web.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert radiologist_web.get(reverse("dashboard:worklist")).status_code == 302


# --- Worklist ------------------------------------------------------------------------------------------------------


def test_worklist_follows_the_selector_order(radiologist_web: Client, serving_model_version: ModelVersion) -> None:
    now = timezone.now()
    old_normal = PredictionFactory(probability=0.1, study__created_at=now - timedelta(hours=3)).study
    positive = PredictionFactory(probability=0.7, study__created_at=now - timedelta(hours=1), study__priority=70).study
    very_positive = PredictionFactory(probability=0.95, study__created_at=now, study__priority=95).study
    queued = StudyFactory(created_at=now - timedelta(hours=2))

    response = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "all"})

    assert response.status_code == 200
    assert row_ids(response.content.decode()) == [str(s.id) for s in (very_positive, positive, old_normal, queued)]


def test_worklist_shows_the_columns_a_radiologist_needs(radiologist_web: Client, completed_study: Study) -> None:
    failed = StudyFactory(status=Study.Status.FAILED, error="The DICOM file has no pixel data.")
    html = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "all"}).content.decode()
    assert completed_study.patient_id in html
    assert completed_study.accession_number in html
    assert "91.0 %" in html
    assert 'class="finding finding--pneumonia">PNEUMONIA' in html
    assert "resnet50-test" in html
    assert "Awaiting review" in html
    assert failed.error in html
    assert 'class="status status--failed"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"positive", "normal"}),  # opens on "Awaiting review"
        ({"scope": "in_progress"}, {"queued"}),
        ({"scope": "all"}, {"positive", "normal", "queued"}),
        ({"label": "PNEUMONIA"}, {"positive"}),
        ({"label": "NORMAL", "scope": "all"}, {"normal"}),
        ({"scope": "nonsense"}, {"positive", "normal"}),
        ({"scope": "nonsense", "label": "NORMAL"}, {"normal"}),
    ],
)
def test_worklist_filters_by_scope_and_finding(
    radiologist_web: Client, serving_model_version: ModelVersion, query: dict[str, str], expected: set[str]
) -> None:
    studies = {
        "positive": PredictionFactory(probability=0.9).study,
        "normal": PredictionFactory(probability=0.1).study,
        "queued": StudyFactory(),
    }
    html = radiologist_web.get(reverse("dashboard:worklist"), query).content.decode()
    assert set(row_ids(html)) == {str(studies[name].id) for name in expected}


def test_worklist_pages_by_fifty(radiologist_web: Client, serving_model_version: ModelVersion) -> None:
    StudyFactory.create_batch(51)
    first = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "all"}).content.decode()
    second = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "all", "page": 2}).content.decode()
    assert len(row_ids(first)) == 50
    assert len(row_ids(second)) == 1
    assert "Page 1 of 2" in first


def test_worklist_rows_endpoint_returns_the_rows_for_the_same_filters(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    positive = PredictionFactory(probability=0.9).study
    StudyFactory()
    response = radiologist_web.get(reverse("dashboard:worklist_rows"), {"label": "PNEUMONIA"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == 1
    assert body["ids"] == [str(positive.id)]
    assert row_ids(body["rows_html"]) == [str(positive.id)]
    assert body["any_unvalidated"] is False


def test_worklist_page_polls_the_rows_endpoint(radiologist_web: Client) -> None:
    html = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    assert f'data-poll-url="{reverse("dashboard:worklist_rows")}"' in html
    assert 'id="worklist-rows"' in html


def test_worklist_shows_the_review_state(radiologist_web: Client, completed_study: Study, radiologist: Any) -> None:
    Review.objects.create(study=completed_study, reviewer=radiologist, finding="NORMAL", agrees_with_model=False)
    html = radiologist_web.get(reverse("dashboard:worklist"), {"scope": "reviewed"}).content.decode()
    assert "Overridden → Normal" in html
    assert radiologist.username in html


# --- Banner for unvalidated models and the population note ------------------------------------------------------------


def test_banner_warns_about_an_unvalidated_model(radiologist_web: Client) -> None:
    demo = ModelVersionFactory(version="demo-untrained", validated=False, threshold_calibrated_at=None)
    study = PredictionFactory(study__model_version=demo, probability=0.6).study

    worklist = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    page = radiologist_web.get(study_url(study)).content.decode()

    assert re.search(r'id="unvalidated-banner"[^>]*role="alert">', worklist)  # not hidden
    assert BANNER in worklist
    assert ROW_BADGE in worklist
    assert BANNER in page and "Not for clinical use" in page
    assert "uncalibrated" in page
    assert radiologist_web.get(reverse("dashboard:worklist_rows")).json()["any_unvalidated"] is True


def test_no_banner_for_a_validated_model(radiologist_web: Client, completed_study: Study) -> None:
    worklist = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    page = radiologist_web.get(study_url(completed_study)).content.decode()
    assert re.search(r'id="unvalidated-banner"[^>]*hidden>', worklist)  # kept for the poller, but hidden
    assert ROW_BADGE not in worklist
    assert BANNER not in page


def test_every_page_carries_the_population_note_and_decision_support_notice(radiologist_web: Client) -> None:
    for url in (reverse("dashboard:worklist"), reverse("dashboard:upload")):
        html = radiologist_web.get(url).content.decode()
        assert "Decision support only" in html
        assert "pediatric" in html
    assert "pediatric" in Client().get(reverse("login")).content.decode()


# --- Study page ----------------------------------------------------------------------------------------------------


def test_study_page_is_404_for_a_missing_study(radiologist_web: Client) -> None:
    response = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": uuid.uuid4()}))
    assert response.status_code == 404


def test_study_page_is_404_when_the_selector_hides_the_study(
    radiologist_web: Client, completed_study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_visible(*, user: Any, study_id: Any) -> Study:
        raise Study.DoesNotExist

    monkeypatch.setattr("diagnosis.selectors.studies.study_get_visible_to", not_visible)
    assert radiologist_web.get(study_url(completed_study)).status_code == 404
    assert not AuditEvent.objects.filter(action="study.viewed").exists()


def test_study_page_records_a_viewed_audit_event(
    radiologist_web: Client, completed_study: Study, radiologist: Any
) -> None:
    assert radiologist_web.get(study_url(completed_study)).status_code == 200
    event = AuditEvent.objects.get(action="study.viewed")
    assert event.actor_id == radiologist.id
    assert (event.subject_type, event.subject_id) == ("study", str(completed_study.id))


def test_study_page_shows_the_result_image_layers_and_metadata(radiologist_web: Client, completed_study: Study) -> None:
    html = radiologist_web.get(study_url(completed_study)).content.decode()
    base = f"/api/v1/studies/{completed_study.id}"
    assert f'src="{base}/image/"' in html
    assert f'src="{base}/heatmap/"' in html
    assert f'href="{base}/overlay/"' in html
    assert 'id="heatmap-toggle"' in html and 'id="heatmap-opacity"' in html
    assert "91.0 %" in html and "50.0 %" in html  # probability and threshold
    assert "PNEUMONIA" in html and "resnet50-test" in html
    assert completed_study.patient_id in html and completed_study.accession_number in html
    assert "Body part examined" in html and "CHEST" in html
    # The review form is preselected to the AI label and says so.
    assert re.search(r'<input type="radio" name="finding" value="PNEUMONIA"[^>]*checked', html)
    assert "Confirm AI finding" in html


def test_study_page_never_shows_a_shadow_prediction(radiologist_web: Client, completed_study: Study) -> None:
    shadow = ModelVersionFactory(version="shadow-candidate", status=ModelVersion.Status.SHADOW, traffic_share=0)
    PredictionFactory(study=completed_study, model_version=shadow, is_shadow=True, probability=0.123)
    html = radiologist_web.get(study_url(completed_study)).content.decode()
    worklist = radiologist_web.get(reverse("dashboard:worklist")).content.decode()
    for page in (html, worklist):
        assert "shadow-candidate" not in page
        assert "12.3 %" not in page
        assert "91.0 %" in page


def test_queued_study_page_waits_for_the_result(radiologist_web: Client, serving_model_version: ModelVersion) -> None:
    study = StudyFactory()
    html = radiologist_web.get(study_url(study)).content.decode()
    assert "Queued for screening" in html
    assert reverse("dashboard:study_status", kwargs={"study_id": study.id}) in html
    assert "/image/" not in html  # no display PNG yet: no broken image
    assert "Reviews open once screening has completed" in html
    assert radiologist_web.get(reverse("dashboard:study_status", kwargs={"study_id": study.id})).json()["status"] == (
        "queued"
    )


def test_failed_study_page_shows_the_error(radiologist_web: Client, serving_model_version: ModelVersion) -> None:
    study = StudyFactory(status=Study.Status.FAILED, error="The file is not a chest radiograph we can read.")
    html = radiologist_web.get(study_url(study)).content.decode()
    assert "Screening failed" in html and study.error in html


# --- Reviews -------------------------------------------------------------------------------------------------------


def test_confirming_the_ai_finding_records_a_review_and_an_audit_row(
    radiologist_web: Client, completed_study: Study, radiologist: Any
) -> None:
    url = reverse("dashboard:study_review", kwargs={"study_id": completed_study.id})
    response = radiologist_web.post(url, {"finding": "PNEUMONIA", "comment": "Right lower lobe consolidation."})

    assert response.status_code == 302
    assert response["Location"] == study_url(completed_study)
    review = Review.objects.get(study=completed_study)
    assert (review.reviewer_id, review.finding, review.agrees_with_model) == (radiologist.id, "PNEUMONIA", True)
    event = AuditEvent.objects.get(action="study.reviewed")
    assert event.subject_id == str(completed_study.id) and event.details["review_id"] == review.id
    page = radiologist_web.get(response["Location"]).content.decode()
    assert "Review recorded: Pneumonia (confirms the AI finding)." in page
    assert "Right lower lobe consolidation." in page


def test_overriding_the_ai_finding_is_audited_as_an_override(radiologist_web: Client, completed_study: Study) -> None:
    url = reverse("dashboard:study_review", kwargs={"study_id": completed_study.id})
    radiologist_web.post(url, {"finding": "NORMAL", "comment": "Overlapping soft tissue."})
    assert Review.objects.get(study=completed_study).agrees_with_model is False
    assert AuditEvent.objects.filter(action="study.overridden").count() == 1
    page = radiologist_web.get(study_url(completed_study)).content.decode()
    assert "overrides AI" in page


def test_reviewing_a_study_that_is_not_completed_shows_a_message(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    study = StudyFactory()
    url = reverse("dashboard:study_review", kwargs={"study_id": study.id})
    response = radiologist_web.post(url, {"finding": "NORMAL"})
    assert response.status_code == 409  # the page again, with the refusal's status (issue 10)
    assert "only completed studies can be reviewed" in response.content.decode()
    assert not Review.objects.exists()


def test_a_review_without_a_finding_is_refused_with_the_form_errors(
    radiologist_web: Client, completed_study: Study
) -> None:
    url = reverse("dashboard:study_review", kwargs={"study_id": completed_study.id})
    response = radiologist_web.post(url, {"finding": "MAYBE"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Review.objects.exists()


def test_reviewing_a_missing_study_is_404(radiologist_web: Client) -> None:
    url = reverse("dashboard:study_review", kwargs={"study_id": uuid.uuid4()})
    assert radiologist_web.post(url, {"finding": "NORMAL"}).status_code == 404


# --- Uploads -------------------------------------------------------------------------------------------------------


def test_upload_endpoint_refuses_a_text_file_with_415_and_stores_nothing(
    radiologist_web: Client, serving_model_version: ModelVersion, stored_files: Any, enqueue: Any
) -> None:
    before = stored_files()
    upload = SimpleUploadedFile("notes.png", b"this is not an image\n" * 10, content_type="image/png")
    response = radiologist_web.post(reverse("dashboard:upload_file"), {"file": upload})
    assert response.status_code == 415
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]
    assert not Study.objects.exists()
    assert stored_files() == before
    enqueue.assert_not_called()


def test_upload_endpoint_creates_a_study_and_queues_it(
    radiologist_web: Client,
    serving_model_version: ModelVersion,
    radiologist: Any,
    enqueue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    upload = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = radiologist_web.post(
            reverse("dashboard:upload_file"), {"file": upload, "patient_id": "P-42", "accession_number": "ACC-7"}
        )
    assert response.status_code == 201
    study = Study.objects.get()
    body = response.json()
    assert body["id"] == str(study.id) and body["url"] == study_url(study)
    assert (study.patient_id, study.accession_number, study.source) == ("P-42", "ACC-7", Study.Source.DASHBOARD)
    assert study.uploaded_by == radiologist
    enqueue.assert_called_once_with(str(study.id))


def test_upload_endpoint_needs_the_csrf_token(radiologist: Any, serving_model_version: ModelVersion) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist, backend="django.contrib.auth.backends.ModelBackend")
    upload = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
    assert client.post(reverse("dashboard:upload_file"), {"file": upload}).status_code == 403
    assert not Study.objects.exists()


def test_upload_endpoint_without_a_file_is_a_400(radiologist_web: Client) -> None:
    response = radiologist_web.post(reverse("dashboard:upload_file"), {})
    assert response.status_code == 400
    assert "No file" in response.json()["detail"]


def test_plain_form_upload_redirects_to_the_new_study(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    upload = SimpleUploadedFile("chest.png", png_bytes(), content_type="image/png")
    response = radiologist_web.post(reverse("dashboard:upload"), {"file": upload, "patient_id": "P-1"})
    study = Study.objects.get()
    assert response.status_code == 302
    assert response["Location"] == study_url(study)


def test_plain_form_upload_of_several_files_queues_each_and_lists_refusals(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    files = [
        SimpleUploadedFile("a.png", png_bytes(), content_type="image/png"),
        SimpleUploadedFile("b.png", png_bytes(width=65), content_type="image/png"),  # the same file would be one study
        SimpleUploadedFile("c.txt", b"hello", content_type="text/plain"),
    ]
    response = radiologist_web.post(reverse("dashboard:upload"), {"file": files})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Received and queued for screening: a.png, b.png." in html
    assert "c.txt:" in html
    assert sorted(Study.objects.values_list("original_filename", flat=True)) == ["a.png", "b.png"]


def test_plain_form_upload_shows_the_refusal(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    upload = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    response = radiologist_web.post(reverse("dashboard:upload"), {"file": upload})
    assert response.status_code == 415
    assert 'class="field__error"' in response.content.decode()
    assert not Study.objects.exists()


def test_upload_page_offers_multiple_files_of_the_accepted_types(radiologist_web: Client) -> None:
    html = radiologist_web.get(reverse("dashboard:upload")).content.decode()
    assert re.search(r'<input type="file" name="file"[^>]*multiple', html)
    assert 'accept=".dcm,.dicom,.png,.jpg,.jpeg' in html
    assert f'data-file-url="{reverse("dashboard:upload_file")}"' in html
