"""Audit gaps (issue 8): logins, failed logins, logouts and lists of studies shown are in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from diagnosis.models import AuditEvent, ModelVersion
from diagnosis.services.audit import audit_chain_verify
from tests.factories import TEST_PASSWORD, PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db

WRONG = "Tr0ub4dor&3-wrong"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_login_is_audited_with_the_user_and_the_client_address(client: Client, radiologist: Any) -> None:
    response = client.post(reverse("login"), {"username": radiologist.username, "password": TEST_PASSWORD})
    assert response.status_code == 302
    [event] = _events("user.logged_in")
    assert (event.actor_id, event.subject_type, event.subject_id, event.client_ip) == (
        radiologist.pk,
        "user",
        "rita.radiologist",
        "127.0.0.1",
    )
    assert audit_chain_verify().ok


def test_a_failed_login_records_the_username_tried_and_the_address_never_the_password(
    client: Client, radiologist: Any
) -> None:
    client.post(reverse("login"), {"username": radiologist.username, "password": WRONG})
    client.post(reverse("login"), {"username": "no-such-user", "password": WRONG})
    failures = _events("user.login_failed")
    assert [(e.subject_id, e.actor_id, e.client_ip) for e in failures] == [
        ("rita.radiologist", None, "127.0.0.1"),
        ("no-such-user", None, "127.0.0.1"),
    ]
    assert failures[1].details["username_attempted"] == "no-such-user"
    everything = str(list(AuditEvent.objects.values_list("subject_id", "details")))
    assert WRONG not in everything
    assert not _events("user.logged_in")


def test_a_logout_is_audited(client: Client, radiologist: Any) -> None:
    client.post(reverse("login"), {"username": radiologist.username, "password": TEST_PASSWORD})
    client.post(reverse("logout"))
    [event] = _events("user.logged_out")
    assert (event.actor_id, event.subject_id) == (radiologist.pk, "rita.radiologist")


def test_each_worklist_page_records_which_studies_it_showed(
    radiologist_web: Client, radiologist: Any, serving_model_version: ModelVersion
) -> None:
    studies = [PredictionFactory().study for _ in range(3)]
    response = radiologist_web.get(reverse("dashboard:worklist"))
    assert response.status_code == 200
    [event] = _events("study.list_viewed")
    assert event.actor_id == radiologist.pk
    assert (event.subject_type, event.subject_id) == ("study_list", "dashboard.worklist")
    assert sorted(event.details["study_ids"]) == sorted(str(s.id) for s in studies)
    assert (event.details["page"], event.details["total"]) == (1, 3)


def test_the_worklist_poll_is_audited_only_when_it_shows_other_studies(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    first = StudyFactory()
    radiologist_web.get(reverse("dashboard:worklist"), {"scope": "all"})
    radiologist_web.get(reverse("dashboard:worklist_rows"), {"scope": "all"})  # same ids: already recorded
    assert len(_events("study.list_viewed")) == 1
    second = StudyFactory()
    radiologist_web.get(reverse("dashboard:worklist_rows"), {"scope": "all"})
    events = _events("study.list_viewed")
    assert len(events) == 2
    assert sorted(events[1].details["study_ids"]) == sorted([str(first.id), str(second.id)])


def test_an_empty_worklist_shows_no_patient_data_and_records_nothing(radiologist_web: Client) -> None:
    assert radiologist_web.get(reverse("dashboard:worklist")).status_code == 200
    assert not _events("study.list_viewed")


def test_each_api_page_records_which_studies_the_caller_saw(
    integrator: Any, integrator_client: APIClient, serving_model_version: ModelVersion
) -> None:
    own = [StudyFactory(uploaded_by=integrator) for _ in range(3)]
    StudyFactory()  # someone else's: never listed, never recorded
    body = integrator_client.get("/api/v1/studies/", {"page_size": 2}).json()
    page_2 = integrator_client.get("/api/v1/studies/", {"page_size": 2, "page": 2}).json()
    events = _events("study.list_viewed")
    assert [e.subject_id for e in events] == ["api.studies", "api.studies"]
    assert events[0].details["study_ids"] == [row["id"] for row in body["results"]]
    assert events[1].details["study_ids"] == [row["id"] for row in page_2["results"]]
    assert sorted(events[0].details["study_ids"] + events[1].details["study_ids"]) == sorted(str(s.id) for s in own)
    assert {e.actor_id for e in events} == {integrator.pk}
    assert audit_chain_verify().ok
