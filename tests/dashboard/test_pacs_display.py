"""The worklist and the study page show studies from the PACS the same way as uploads (issue 9).

Source (Upload / API / PACS C-STORE / PACS STOW-RS), calling AE title, accession, study date and patient; and for
a DICOM study of several images, "image k of N" on every row, so one result per image is plain to see.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from diagnosis.models import DicomStudy, ModelVersion, Study
from tests.dicom_factories import pacs_study
from tests.factories import PredictionFactory, StudyFactory

pytestmark = pytest.mark.django_db


def row_html(html: str, study: Study) -> str:
    match = re.search(rf'<tr id="study-{study.id}".*?</tr>', html, re.S)
    assert match is not None, f"no row for {study.id}"
    return match.group(0)


def text(fragment: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip())


def test_the_worklist_shows_each_source_the_same_way(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    upload = PredictionFactory(study__source=Study.Source.DASHBOARD).study
    api = PredictionFactory(study__source=Study.Source.API).study
    [c_store] = pacs_study(calling_ae_title="PACS_MAIN", accession_number="ACC-CS", patient_name="DOE^JANE")
    [stow] = pacs_study(received_via=DicomStudy.Via.STOW_RS, calling_ae_title="", accession_number="ACC-STOW")

    html = radiologist_web.get(reverse("dashboard:worklist")).content.decode()

    assert "Upload" in text(row_html(html, upload))
    assert "API" in text(row_html(html, api))
    c_store_row = text(row_html(html, c_store))
    for expected in ("PACS C-STORE", "from PACS_MAIN", "ACC-CS", "study 2026-11-30", "DOE, JANE"):
        assert expected in c_store_row
    assert c_store.patient_id in c_store_row
    assert "image 1 of 1" not in c_store_row  # a single image needs no "k of N"
    stow_row = text(row_html(html, stow))
    assert "PACS STOW-RS" in stow_row
    assert "from " not in stow_row  # no calling AE title over HTTP
    # Uploads have no DICOM study around them: no "image k of N".
    assert "image " not in text(row_html(html, upload))


def test_every_image_of_a_dicom_study_is_its_own_row_with_image_k_of_n(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    studies = pacs_study(images=3, accession_number="ACC-3")

    response = radiologist_web.get(reverse("dashboard:worklist_rows"))

    rows_html = response.json()["rows_html"]
    for number, study in enumerate(studies, 1):
        row = text(row_html(rows_html, study))
        assert f"image {number} of 3" in row
        assert "ACC-3" in row


def test_the_study_page_shows_where_a_pacs_study_came_from(
    radiologist_web: Client, serving_model_version: ModelVersion
) -> None:
    studies = pacs_study(images=2, calling_ae_title="PACS_MAIN", study_instance_uid="1.2.826.0.1.99", node__name="main")

    html = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": studies[1].id})).content.decode()

    page = text(html)
    for expected in (
        "PACS C-STORE",
        "from PACS_MAIN",
        "image 2 of 2",
        "Study date 2026-11-30",
        "1.2.826.0.1.99",
        "PACS (DICOM C-STORE)",
        "Calling AE title PACS_MAIN",
        "DICOM node main",
        "Image 2 of 2 in this DICOM study (one result per image)",
        "DOE, JANE",
    ):
        assert expected in page, expected
    assert f'href="/api/v1/studies/{studies[1].id}/fhir/"' in html


def test_the_study_page_of_an_upload_keeps_its_uploader_and_has_no_fhir_link_until_completed(
    radiologist_web: Client, serving_model_version: ModelVersion, radiologist: Any
) -> None:
    queued = StudyFactory(source=Study.Source.DASHBOARD, uploaded_by=radiologist)

    html = radiologist_web.get(reverse("dashboard:study", kwargs={"study_id": queued.id})).content.decode()

    assert f"{radiologist.username} (Upload)" in text(html)
    assert "image 1 of" not in html
    assert 'id="fhir-link"' not in html


def test_the_worklist_costs_the_same_queries_with_more_pacs_studies(
    radiologist_web: Client, serving_model_version: ModelVersion, django_assert_num_queries: Any
) -> None:
    pacs_study(images=1)
    PredictionFactory()
    url = reverse("dashboard:worklist")
    with CaptureQueriesContext(connection) as few:
        assert radiologist_web.get(url).status_code == 200
    pacs_study(images=3)
    pacs_study(images=2, received_via=DicomStudy.Via.STOW_RS)
    StudyFactory.create_batch(2)
    with django_assert_num_queries(len(few.captured_queries)):
        assert radiologist_web.get(url).status_code == 200


@override_settings(PNEUMO_DICOM_AE_TITLE="PNEUMO_SITE", PNEUMO_DICOM_PORT=11999)
def test_the_help_page_says_how_to_connect_a_pacs_with_this_sites_values(radiologist_web: Client) -> None:
    response = radiologist_web.get(reverse("dashboard:help"))

    assert response.status_code == 200
    page = text(response.content.decode())
    for expected in (
        "Connecting a PACS",
        "AE title PNEUMO_SITE on port 11999",
        "dicom_node add orthanc",
        "http://testserver/dicomweb/studies",
        '"ChunkedTransfers": false',
        "image k of N",
        "/api/v1/studies/<id>/fhir/",
        "pediatric (Kermany et al., children aged 1–5)",
        "docs/DICOM_CONFORMANCE.md",
    ):
        assert expected in page, expected
    assert f'href="{reverse("dashboard:help")}" aria-current="page"' in response.content.decode()


def test_the_help_page_is_for_dashboard_users_only(integrator_web: Client, client: Client) -> None:
    assert integrator_web.get(reverse("dashboard:help")).status_code == 403
    assert client.get(reverse("dashboard:help")).status_code == 302
