"""What the STOW-RS view does with a chunked body when the server does not decode it (no gunicorn): 411, not 200."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.test import RequestFactory
from knox.models import AuthToken
from pydicom.uid import generate_uid

from diagnosis.dicomweb.views import stow
from diagnosis.models import DicomInstance
from tests.pacs.dicom_files import image_bytes

pytestmark = pytest.mark.django_db

BOUNDARY = "b0und"


def chunked_request(token: str, *, terminated: bool) -> Any:
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + image_bytes(study_uid=generate_uid())
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    request = RequestFactory().generic(
        "POST",
        "/dicomweb/studies",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    request.META.pop("CONTENT_LENGTH", None)
    request.META["CONTENT_TYPE"] = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    request.META["wsgi.input"] = io.BytesIO(body)
    if terminated:
        request.META["wsgi.input_terminated"] = True
    return request


def test_a_chunked_body_the_server_did_not_decode_is_refused_with_411(integrator: Any) -> None:
    _, token = AuthToken.objects.create(user=integrator)
    response = stow(chunked_request(token, terminated=False))
    assert response.status_code == 411
    assert DicomInstance.objects.count() == 0


def test_a_chunked_body_the_server_terminated_is_read_from_wsgi_input(integrator: Any) -> None:
    _, token = AuthToken.objects.create(user=integrator)
    response = stow(chunked_request(token, terminated=True))
    assert response.status_code == 200, response.content
    assert DicomInstance.objects.count() == 1
