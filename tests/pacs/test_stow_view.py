"""What the STOW-RS view does with a chunked body when the server does not decode it (no gunicorn): 411, not 200."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from axes.models import AccessAttempt
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


def basic_request(username: str, password: str) -> Any:
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    return RequestFactory().post(
        "/dicomweb/studies",
        data=b"",
        content_type=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )


def test_http_basic_guessing_is_locked_out_like_the_login_page(integrator: Any, settings: Any) -> None:
    # HTTP Basic takes a password on every request: without the lockout it would be an unthrottled guessing oracle.
    integrator.set_password("the-right-password")
    integrator.save()
    # The right password gets past authentication (the empty body is then refused, but not as unauthenticated).
    assert stow(basic_request(integrator.username, "the-right-password")).status_code not in (401, 403)
    for attempt in range(settings.PNEUMO_LOGIN_FAILURE_LIMIT):
        assert stow(basic_request(integrator.username, f"guess-{attempt}")).status_code == 401

    locked = stow(basic_request(integrator.username, "the-right-password"))

    assert locked.status_code == 401
    assert locked["WWW-Authenticate"].startswith("Basic")
    assert AccessAttempt.objects.filter(username=integrator.username).exists()
