"""Upload: patient ID and accession per PNG/JPEG file, required by PNEUMO_UPLOAD_REQUIRE_PATIENT_ID; DICOM files
use their own header. Checked on the server, whatever the page's script did."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from diagnosis.models import ModelVersion, Study
from tests.factories import png_bytes
from tests.pacs.dicom_files import encode, image_dataset

pytestmark = pytest.mark.django_db


def png(name: str = "chest.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(), content_type="image/png")


def dicom() -> SimpleUploadedFile:
    ds = image_dataset(study_uid="1.2.826.0.1.55", patient_id="DCM-PAT-9", accession="DCM-ACC-9")
    return SimpleUploadedFile("chest.dcm", encode(ds), content_type="application/dicom")


@override_settings(PNEUMO_UPLOAD_REQUIRE_PATIENT_ID=True)
def test_a_png_without_a_patient_id_is_refused_when_the_site_requires_one(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    response = radiologist_web.post(reverse("dashboard:upload_file"), {"file": png(), "patient_id": "  "})
    assert response.status_code == 400
    assert "patient ID" in response.json()["detail"]
    assert "patient_id" in response.json()["fields"]
    assert not Study.objects.exists()
    enqueue.assert_not_called()


@override_settings(PNEUMO_UPLOAD_REQUIRE_PATIENT_ID=True)
def test_each_file_keeps_its_own_ids_and_dicom_uses_its_header(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    url = reverse("dashboard:upload_file")
    first = radiologist_web.post(url, {"file": png("a.png"), "patient_id": "PAT-A", "accession_number": "ACC-A"})
    second = radiologist_web.post(url, {"file": png("b.png"), "patient_id": "PAT-B"})
    scan = radiologist_web.post(url, {"file": dicom()})  # no fields: the header names the patient
    assert (first.status_code, second.status_code, scan.status_code) == (201, 201, 201)
    got = {s.original_filename: (s.patient_id, s.accession_number) for s in Study.objects.all()}
    assert got == {"a.png": ("PAT-A", "ACC-A"), "b.png": ("PAT-B", ""), "chest.dcm": ("DCM-PAT-9", "DCM-ACC-9")}


def test_without_the_setting_a_png_may_come_without_ids(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any, settings: Any
) -> None:
    assert settings.PNEUMO_UPLOAD_REQUIRE_PATIENT_ID is False  # local and test default; production turns it on
    assert radiologist_web.post(reverse("dashboard:upload_file"), {"file": png()}).status_code == 201


@override_settings(PNEUMO_UPLOAD_REQUIRE_PATIENT_ID=True)
def test_the_plain_form_refuses_pngs_without_a_patient_id_but_takes_the_dicom(
    radiologist_web: Client, serving_model_version: ModelVersion, enqueue: Any
) -> None:
    response = radiologist_web.post(reverse("dashboard:upload"), {"file": [png(), dicom()]})
    assert response.status_code == 200
    assert "chest.png: A PNG or JPEG file carries no patient data" in response.content.decode()
    assert list(Study.objects.values_list("patient_id", flat=True)) == ["DCM-PAT-9"]


@override_settings(PNEUMO_UPLOAD_REQUIRE_PATIENT_ID=True)
def test_the_upload_page_tells_the_script_and_the_reader_that_ids_are_required(radiologist_web: Client) -> None:
    html = radiologist_web.get(reverse("dashboard:upload")).content.decode()
    assert 'data-require-patient-id="true"' in html
    assert "required for PNG/JPEG" in html
    assert 'id="drop-zone"' in html and 'id="staged-files"' in html


def test_img_src_allows_blob_previews_and_nothing_else_widens(client: Client) -> None:
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    img_src = next(part for part in policy.split(";") if part.strip().startswith("img-src")).split()
    assert img_src[1:] == ["'self'", "data:", "blob:"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src")).split()
    assert script_src[1:] == ["'self'"]
