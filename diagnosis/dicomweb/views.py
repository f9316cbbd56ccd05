"""STOW-RS (PS3.18 §10.5): ``POST /dicomweb/studies[/{StudyInstanceUID}]`` stores DICOM instances sent by a PACS.

A plain Django view rather than a DRF one: the body is a ``multipart/related`` stream of DICOM files that must be
read in bounded chunks (and, sent chunked, straight from ``wsgi.input``), which DRF's parsers would buffer whole.
It is not in the OpenAPI schema (an OpenAPI client cannot speak it); docs/DICOM_CONFORMANCE.md describes it.

Authentication: the integrator's API token (``Authorization: Token …``) or HTTP Basic (``Authorization: Basic …``,
Orthanc's DICOMweb client); never the session, so it is CSRF-exempt. Anonymous → 401, a role other than integrator
or staff → 403. Each instance goes through :func:`diagnosis.services.pacs_ingest.dicom_instance_receive`, as from
the DICOM listener; the answer lists every instance under ReferencedSOPSequence or FailedSOPSequence.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import tempfile
from collections.abc import Iterator
from typing import IO, Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from knox.auth import TokenAuthentication
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from diagnosis.dicomweb.multipart import (
    DICOM_MEDIA_TYPE,
    MultipartError,
    Part,
    UnsupportedContentTypeError,
    parse_parts,
    stow_boundary,
)
from diagnosis.interop.part10 import MAGIC, PREAMBLE_LENGTH
from diagnosis.models import DicomStudy
from diagnosis.selectors.studies import user_is_integrator
from diagnosis.services.pacs_ingest import IngestOutcome, IngestStatus, dicom_instance_receive

logger = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
READ_CHUNK_BYTES = 1024 * 1024

#: FailureReason (0008,1197) for each refused outcome (PS3.18 §10.5.3 uses the C-STORE status codes).
FAILURE_REASON: dict[IngestStatus, int] = {
    IngestStatus.CANNOT_UNDERSTAND: 0xC000,  # Error: Cannot understand (not DICOM, damaged, invalid UIDs)
    IngestStatus.MISMATCH: 0xA900,  # Error: Data Set does not match SOP Class
    IngestStatus.WRONG_STUDY: 0xA900,  # /studies/{uid}: the instance belongs to another study
    IngestStatus.SOP_CLASS_NOT_SUPPORTED: 0x0122,  # Refused: SOP Class not supported
    IngestStatus.OUT_OF_RESOURCES: 0xA700,  # Refused: Out of Resources
    IngestStatus.PROCESSING_FAILURE: 0x0110,  # Processing failure
}


class _HttpError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> HttpResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _authenticate(request: HttpRequest) -> User:
    """The caller by token or HTTP Basic; 401 without valid credentials, 403 without the integrator/staff role."""
    drf_request = Request(request)
    challenge = {"WWW-Authenticate": 'Basic realm="PneumoWeb DICOMweb"'}
    user: Any = None
    for authenticator in (TokenAuthentication(), BasicAuthentication()):
        try:
            result = authenticator.authenticate(drf_request)
        except (AuthenticationFailed, PermissionDenied) as exc:  # PermissionDenied: django-axes lockout
            raise _HttpError(401, str(exc) or "Invalid credentials.", challenge) from exc
        if result is not None:
            user = result[0]
            break
    if user is None or not user.is_authenticated:
        raise _HttpError(401, "Send an integrator token or HTTP Basic credentials.", challenge)
    if not (user.is_staff or user_is_integrator(user)):
        raise _HttpError(403, "Only integrator (or staff) accounts may store studies by STOW-RS.")
    return cast(User, user)


def _body_stream(request: HttpRequest) -> tuple[IO[bytes] | HttpRequest, int | None]:
    """Where to read the body from, and its declared length (``None`` when sent chunked)."""
    raw_length = (request.META.get("CONTENT_LENGTH") or "").strip()
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise _HttpError(400, "Invalid Content-Length.") from exc
        if length > settings.PNEUMO_STOW_MAX_BYTES:
            raise _HttpError(413, f"The request is over the {settings.PNEUMO_STOW_MAX_BYTES} byte limit.")
        return request, length
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        # Django reads nothing of a body without Content-Length. gunicorn decodes chunked bodies and says so with
        # wsgi.input_terminated; under a server that does not, refuse rather than store nothing and answer 200.
        if request.META.get("wsgi.input_terminated"):
            return cast(IO[bytes], request.META["wsgi.input"]), None
        raise _HttpError(411, "This server cannot read a chunked body: send it with a Content-Length.")
    raise _HttpError(400, "The request has no body.")


@contextlib.contextmanager
def _spooled_body(request: HttpRequest) -> Iterator[mmap.mmap]:
    """The body copied to a temporary file (at most ``PNEUMO_STOW_MAX_BYTES``) and mapped read-only."""
    stream, _ = _body_stream(request)
    limit = settings.PNEUMO_STOW_MAX_BYTES
    with tempfile.TemporaryFile() as spool:
        total = 0
        while chunk := stream.read(READ_CHUNK_BYTES):
            total += len(chunk)
            if total > limit:
                raise _HttpError(413, f"The request is over the {limit} byte limit.")
            spool.write(chunk)
        if total == 0:
            raise _HttpError(400, "The request has no body.")
        spool.flush()
        with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as body:
            yield body


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _item(outcome: IngestOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": _uid(outcome.sop_class_uid),
        "00081155": _uid(outcome.sop_instance_uid),
    }
    if not outcome.status.ok:
        item["00081197"] = {"vr": "US", "Value": [FAILURE_REASON[outcome.status]]}
    return item


def _as_part10(data: bytes) -> bytes:
    """The part as a Part 10 file. Some senders (dicomweb-client, via pydicom's ``dcmwrite``) leave out the
    128-byte preamble and ``DICM`` prefix and start at the file meta group (0002,xxxx): those are added back."""
    if data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] == MAGIC:
        return data
    if data[:4] == MAGIC:
        return bytes(PREAMBLE_LENGTH) + data
    if data[:2] == b"\x02\x00":
        return bytes(PREAMBLE_LENGTH) + MAGIC + data
    return data


def _store_parts(
    body: mmap.mmap, parts: list[Part], *, user: User, study_instance_uid: str | None
) -> list[IngestOutcome]:
    outcomes: list[IngestOutcome] = []
    for part in parts:
        if part.headers.get("content-type") and part.content_type != DICOM_MEDIA_TYPE:
            outcomes.append(IngestOutcome(status=IngestStatus.CANNOT_UNDERSTAND, reason="Not application/dicom."))
            continue
        outcomes.append(
            dicom_instance_receive(
                data=_as_part10(body[part.start : part.end]),
                via=DicomStudy.Via.STOW_RS,
                calling_ae_title="",
                node=None,
                user=user,
                expected_study_uid=study_instance_uid,
            )
        )
    return outcomes


@csrf_exempt
@require_POST
def stow(request: HttpRequest, study_instance_uid: str | None = None) -> HttpResponse:
    """Store the instances of a ``multipart/related; type="application/dicom"`` request."""
    try:
        user = _authenticate(request)
        try:
            boundary = stow_boundary(request.META.get("CONTENT_TYPE", ""))
        except UnsupportedContentTypeError as exc:
            raise _HttpError(415, str(exc)) from exc
        except MultipartError as exc:
            raise _HttpError(400, str(exc)) from exc
        with _spooled_body(request) as body:
            try:
                parts = parse_parts(body, boundary)
            except MultipartError as exc:
                raise _HttpError(400, f"Malformed multipart body: {exc}") from exc
            if not parts:
                raise _HttpError(400, "The request holds no instance.")
            outcomes = _store_parts(body, parts, user=user, study_instance_uid=study_instance_uid)
    except _HttpError as error:
        return _error(error.status, error.detail, error.headers)
    stored = [o for o in outcomes if o.status.ok]
    failed = [o for o in outcomes if not o.status.ok]
    logger.info("STOW-RS by %s: %d stored, %d failed", user.get_username(), len(stored), len(failed))
    document: dict[str, Any] = {
        "00081199": {"vr": "SQ", "Value": [_item(o) for o in stored]} if stored else {"vr": "SQ"},
        "00081198": {"vr": "SQ", "Value": [_item(o) for o in failed]} if failed else {"vr": "SQ"},
    }
    status = 200 if not failed else 202 if stored else 409
    return JsonResponse(document, status=status, content_type=DICOM_JSON)
