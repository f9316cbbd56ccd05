"""DICOM nodes in admin and by command (credentials kept out of lists, forms and the audit log), the C-ECHO test
button, the resend actions, and the study page's "sent to PACS" table."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from diagnosis.models import AuditAction, AuditEvent, DicomNode, ResultObject, ResultSend, Study
from diagnosis.services.pacs_results import study_results_create
from tests.factories import PredictionFactory, StudyFactory
from tests.integration.faults import free_port
from tests.pacs.results_support import synthetic_dx

pytestmark = pytest.mark.django_db

SECRET = "pacs-s3cret-pw"


@pytest.fixture
def web_node(db: None) -> DicomNode:
    return DicomNode.objects.create(
        name="hospital-pacs",
        ae_title="HOSPPACS",
        dicomweb_url="https://pacs.example/dicom-web",
        username="pneumo-user",
        password=SECRET,
        receives_results=True,
    )


def _audit_text(action: str) -> str:
    return json.dumps([e.details for e in AuditEvent.objects.filter(action=action)])


# --- Command ------------------------------------------------------------------------------------------------------


def test_dicom_node_add_list_remove(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACS_PASSWORD", SECRET)
    out = StringIO()

    call_command(
        "dicom_node", "add", "orthanc", "--ae-title", "ORTHANC", "--host", "pacs.local", "--port", "4242",
        "--sends", "--receives-results", stdout=out,
    )  # fmt: skip
    call_command(
        "dicom_node", "add", "cloud", "--dicomweb-url", "https://u:p@cloud.example/dicom-web", "--username", "pneumo",
        "--password-env", "PACS_PASSWORD", "--receives-results", stdout=out,
    )  # fmt: skip
    listing = StringIO()
    call_command("dicom_node", "list", stdout=listing)

    orthanc, cloud = DicomNode.objects.get(name="orthanc"), DicomNode.objects.get(name="cloud")
    assert (orthanc.ae_title, orthanc.host, orthanc.port, orthanc.sends_studies, orthanc.receives_results) == (
        "ORTHANC", "pacs.local", 4242, True, True,
    )  # fmt: skip
    assert (cloud.username, cloud.password, cloud.sends_studies) == ("pneumo", SECRET, False)
    text = listing.getvalue()
    assert "orthanc" in text and "pacs.local:4242" in text and "https://cloud.example/dicom-web" in text
    assert SECRET not in text and "u:p@" not in text and "pneumo " not in text
    changed = _audit_text(AuditAction.DICOM_NODE_CHANGED)
    assert '"has_credentials": true' in changed
    assert SECRET not in changed and 'pneumo"' not in changed and "u:p@" not in changed

    call_command("dicom_node", "remove", "orthanc", stdout=out)

    assert not DicomNode.objects.filter(name="orthanc").exists()
    removed = AuditEvent.objects.get(action=AuditAction.DICOM_NODE_REMOVED)
    assert removed.details["name"] == "orthanc"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--receives-results", "--ae-title", "X"], "needs an AE title, host and port, or a DICOMweb URL"),
        (["x", "--sends"], "needs its AE title"),
        (["x", "--ae-title", "BAD\\AE", "--sends"], "ae_title must be 1-16 characters"),
        (["x", "--ae-title", "A", "--password-env", "NOT_SET_ANYWHERE"], "NOT_SET_ANYWHERE is not set"),
        (["bad name", "--ae-title", "A"], "name:"),
    ],
)
def test_dicom_node_add_refuses_a_node_that_cannot_work(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("dicom_node", "add", *args, stdout=StringIO())
    assert not DicomNode.objects.exists()


def test_dicom_node_remove_of_an_unknown_node_is_an_error() -> None:
    with pytest.raises(CommandError, match="No DICOM node named 'ghost'"):
        call_command("dicom_node", "remove", "ghost")


# --- Admin --------------------------------------------------------------------------------------------------------


def test_the_node_list_and_form_never_show_the_credentials(admin_web: Client, web_node: DicomNode) -> None:
    listing = admin_web.get(reverse("admin:diagnosis_dicomnode_changelist")).content.decode()
    form = admin_web.get(reverse("admin:diagnosis_dicomnode_change", args=[web_node.pk])).content.decode()

    assert "hospital-pacs" in listing and "https://pacs.example/dicom-web" in listing
    assert "pneumo-user" not in listing and SECRET not in listing
    assert SECRET not in form
    assert 'type="password"' in form and "Test connection (C-ECHO)" in form


def _post_node(client: Client, node: DicomNode, **changes: Any) -> Any:
    data = {
        "name": node.name,
        "ae_title": node.ae_title,
        "host": node.host,
        "port": node.port or "",
        "dicomweb_url": node.dicomweb_url,
        "username": node.username,
        "password": "",
        "sends_studies": "on" if node.sends_studies else "",
        "receives_results": "on" if node.receives_results else "",
        "enabled": "on" if node.enabled else "",
        **changes,
    }
    return client.post(
        reverse("admin:diagnosis_dicomnode_change", args=[node.pk]), {k: v for k, v in data.items() if v != ""}
    )


def test_saving_the_form_with_an_empty_password_keeps_it_and_audits_without_it(
    admin_web: Client, web_node: DicomNode
) -> None:
    response = _post_node(admin_web, web_node, host="pacs.example")
    assert response.status_code == 302, response.content.decode()[:2000]
    web_node.refresh_from_db()
    assert (web_node.password, web_node.host) == (SECRET, "pacs.example")

    _post_node(admin_web, web_node, password="new-" + SECRET)
    web_node.refresh_from_db()
    assert web_node.password == "new-" + SECRET

    events = list(AuditEvent.objects.filter(action=AuditAction.DICOM_NODE_CHANGED).order_by("created_at"))
    assert [e.details["changed"] for e in events] == [["host"], ["credentials"]]
    assert SECRET not in _audit_text(AuditAction.DICOM_NODE_CHANGED)
    assert "pneumo-user" not in _audit_text(AuditAction.DICOM_NODE_CHANGED)


def test_deleting_a_node_in_admin_is_audited(admin_web: Client, web_node: DicomNode) -> None:
    admin_web.post(reverse("admin:diagnosis_dicomnode_delete", args=[web_node.pk]), {"post": "yes"})

    assert not DicomNode.objects.exists()
    assert AuditEvent.objects.get(action=AuditAction.DICOM_NODE_REMOVED).details["name"] == "hospital-pacs"


def test_the_echo_button_reports_a_node_that_does_not_answer(admin_web: Client) -> None:
    node = DicomNode.objects.create(name="down", ae_title="DOWN", host="127.0.0.1", port=free_port())

    response = admin_web.post(reverse("admin:diagnosis_dicomnode_echo", args=[node.pk]), follow=True)

    text = response.content.decode()
    assert response.redirect_chain == [(reverse("admin:diagnosis_dicomnode_change", args=[node.pk]), 302)]
    assert '<li class="error">Down: Could not connect to DOWN@127.0.0.1' in text  # the admin capitalises messages


def test_the_resend_action_queues_failed_sends_again(admin_web: Client, admin_user: Any) -> None:
    node = DicomNode.objects.create(
        name="pacs", ae_title="P", host="127.0.0.1", port=free_port(), receives_results=True
    )
    study = StudyFactory(completed=True, format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))
    PredictionFactory(study=study)
    study_results_create(study_id=study.id)
    ResultSend.objects.update(status=ResultSend.Status.FAILED, attempts=7, error="refused")

    response = admin_web.post(
        reverse("admin:diagnosis_resultsend_changelist"),
        {"action": "resend", "_selected_action": [s.pk for s in ResultSend.objects.all()]},
        follow=True,
    )

    assert "2 send(s) queued again." in response.content.decode()
    # Eager Celery in unit tests: the queued sends ran at once, and the PACS (a closed port) is still down.
    assert {s.node_name for s in ResultSend.objects.all()} == {node.name}
    requested = AuditEvent.objects.filter(action=AuditAction.RESULT_RESEND_REQUESTED)
    assert {(e.actor_name, e.details["previous_status"]) for e in requested} == {(admin_user.username, "failed")}
    assert ResultObject.objects.count() == 2


# --- Study page ---------------------------------------------------------------------------------------------------


def test_the_study_page_shows_what_was_sent_where_and_when(radiologist_web: Client, web_node: DicomNode) -> None:
    study = StudyFactory(completed=True, format=Study.Format.DICOM, file=ContentFile(synthetic_dx(), name="original"))
    PredictionFactory(study=study)
    objects = study_results_create(study_id=study.id)
    sr = next(o for o in objects if o.kind == "ai-sr")
    ResultSend.objects.filter(result=sr).update(status="failed", attempts=7, error="STOW-RS answered HTTP 503")

    html = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()

    assert 'id="result-sends"' in html
    assert "AI finding (SR, preliminary)" in html and "Grad-CAM overlay (Secondary Capture)" in html
    assert "hospital-pacs" in html and "STOW-RS answered HTTP 503" in html and "Failed" in html
    assert SECRET not in html


def test_an_image_upload_has_no_pacs_section(radiologist_web: Client) -> None:
    study = PredictionFactory().study

    html = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": study.id})).content.decode()

    assert 'id="result-sends"' not in html
