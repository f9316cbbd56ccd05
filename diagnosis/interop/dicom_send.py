"""Send DICOM objects to a peer: C-STORE (pynetdicom) or STOW-RS (dicomweb-client), and test a peer with C-ECHO.

Pure network code over plain dataclasses (no Django). A failed send raises :class:`TransientSendError` (worth a
retry: the peer is down, busy, out of resources, timed out) or :class:`PermanentSendError` (a retry cannot help:
association rejected for good, SOP class refused, 4xx), each with a reason a person can read. Credentials never
appear in a reason, a repr or a log line.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

logger = logging.getLogger(__name__)

# C-STORE statuses (PS3.4 B.2.3): 0xA7xx "out of resources" passes with time; other failures do not.
_OUT_OF_RESOURCES = range(0xA700, 0xA800)
_SUCCESS_OR_WARNING = {0x0000, 0xB000, 0xB006, 0xB007}
# HTTP answers worth a retry: the server is busy, down for a moment or behind a failing proxy.
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


class SendError(Exception):
    """A send failed; ``reason`` says why, for the send's record and the admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """The peer may accept it later: retry with backoff."""


class PermanentSendError(SendError):
    """The peer will not accept it as configured: retrying is pointless."""


@dataclass(frozen=True)
class Destination:
    """Where results go: DIMSE (``ae_title``, ``host``, ``port``) or DICOMweb (``dicomweb_url``, preferred if set)."""

    name: str
    ae_title: str = ""
    host: str = ""
    port: int | None = None
    dicomweb_url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def uses_dicomweb(self) -> bool:
        return bool(self.dicomweb_url)


@dataclass(frozen=True)
class Timeouts:
    acse: float = 30
    dimse: float = 30
    network: float = 60
    http: float = 60


@dataclass(frozen=True)
class SendResult:
    via: str  # "c-store" | "stow-rs"
    detail: str


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    message: str


def url_without_credentials(url: str) -> str:
    """``https://user:pw@pacs/dicom-web`` → ``https://pacs/dicom-web``: for logs, audit details and listings."""
    return re.sub(r"//[^/@]*@", "//", url)


def _dataset(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def send_objects(
    destination: Destination, objects: Sequence[bytes], *, calling_ae_title: str, timeouts: Timeouts = Timeouts()
) -> SendResult:
    """Send DICOM Part 10 ``objects`` (Explicit VR Little Endian) to ``destination`` by STOW-RS or C-STORE."""
    datasets = [_dataset(data) for data in objects]
    if destination.uses_dicomweb:
        return stow_rs(destination, datasets, timeouts=timeouts)
    return c_store(destination, datasets, calling_ae_title=calling_ae_title, timeouts=timeouts)


def _ae(calling_ae_title: str, timeouts: Timeouts) -> AE:
    ae = AE(ae_title=calling_ae_title)
    ae.acse_timeout = timeouts.acse
    ae.dimse_timeout = timeouts.dimse
    ae.network_timeout = timeouts.network
    ae.connection_timeout = timeouts.acse
    return ae


def _check_dimse_target(destination: Destination) -> tuple[str, int, str]:
    if not destination.host or not destination.port or not destination.ae_title:
        raise PermanentSendError(f"Node {destination.name} has no AE title, host and port (nor a DICOMweb URL).")
    return destination.host, destination.port, destination.ae_title


class _Rejection:
    """Keeps the A-ASSOCIATE-RJ the peer sent (pynetdicom logs it but does not keep it on the association)."""

    def __init__(self) -> None:
        self.result: int | None = None
        self.reason = ""

    def handler(self, event: evt.Event) -> None:
        primitive = getattr(event, "primitive", None)
        if primitive is not None and getattr(primitive, "result", None) in (0x01, 0x02):
            self.result = primitive.result
            self.reason = f"{primitive.result_str}, {primitive.source_str}: {primitive.reason_str}"

    @property
    def handlers(
        self,
    ) -> list[
        tuple[evt.NotificationEvent | evt.InterventionEvent, Callable[..., Any]]
        | tuple[evt.NotificationEvent | evt.InterventionEvent, Callable[..., Any], list[Any]]
    ]:
        return [(evt.EVT_ACSE_RECV, self.handler)]


def _association_failure(destination: Destination, assoc: Association, rejection: _Rejection) -> SendError:
    where = f"{destination.ae_title}@{destination.host}:{destination.port}"
    if assoc.is_rejected:
        reason = f"{where} rejected the association ({rejection.reason or 'no reason given'})"
        # 0x01 is "rejected-permanent" (wrong AE title, say); 0x02 "rejected-transient" (busy, too many).
        return TransientSendError(reason) if rejection.result == 0x02 else PermanentSendError(reason)
    # pynetdicom marks a refused or timed-out connection "aborted" as well.
    return TransientSendError(f"Could not connect to {where} (connection refused, timed out or aborted)")


def c_store(
    destination: Destination, datasets: Sequence[Dataset], *, calling_ae_title: str, timeouts: Timeouts = Timeouts()
) -> SendResult:
    """C-STORE every dataset over one association: one presentation context per SOP class, Explicit VR LE."""
    host, port, called = _check_dimse_target(destination)
    ae = _ae(calling_ae_title, timeouts)
    sop_classes = sorted({str(ds.SOPClassUID) for ds in datasets})
    contexts = [build_context(uid, [ExplicitVRLittleEndian]) for uid in sop_classes]
    rejection = _Rejection()
    assoc = ae.associate(host, port, ae_title=called, contexts=contexts, evt_handlers=rejection.handlers)
    if not assoc.is_established:
        raise _association_failure(destination, assoc, rejection)
    try:
        for ds in datasets:
            accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == ds.SOPClassUID]
            if not accepted:
                raise PermanentSendError(
                    f"{called} does not accept SOP class {ds.SOPClassUID} in Explicit VR Little Endian"
                )
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code is None:
                raise TransientSendError(f"{called} did not answer the C-STORE (timeout or aborted association)")
            if code in _OUT_OF_RESOURCES:
                raise TransientSendError(f"{called} answered C-STORE status 0x{code:04X} (out of resources)")
            if code not in _SUCCESS_OR_WARNING:
                raise PermanentSendError(f"{called} refused the object: C-STORE status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return SendResult(via="c-store", detail=f"{len(datasets)} object(s) stored at {called}@{host}:{port}")


def _http_session(destination: Destination) -> requests.Session:
    session = requests.Session()
    if destination.username:
        session.auth = (destination.username, destination.password)
    return session


def stow_rs(destination: Destination, datasets: Sequence[Dataset], *, timeouts: Timeouts = Timeouts()) -> SendResult:
    """STOW-RS the datasets to ``{dicomweb_url}/studies`` (HTTP Basic when the node has credentials)."""
    session = _http_session(destination)
    client = DICOMwebClient(url=destination.dicomweb_url.rstrip("/"), session=session)
    client.set_http_retry_params(retry=False)
    original_request = session.request

    def request_with_timeout(*args: object, **kwargs: object) -> requests.Response:
        kwargs.setdefault("timeout", timeouts.http)
        return original_request(*args, **kwargs)  # type: ignore[arg-type]

    session.request = request_with_timeout  # type: ignore[method-assign]
    try:
        response = client.store_instances(datasets)
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else 0
        reason = f"STOW-RS to node {destination.name} answered HTTP {code}"
        raise (TransientSendError if code in _TRANSIENT_HTTP else PermanentSendError)(reason) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientSendError(
            f"Could not reach the DICOMweb server of node {destination.name} ({type(exc).__name__})"
        ) from exc
    except requests.RequestException as exc:
        raise PermanentSendError(f"STOW-RS to node {destination.name} failed ({type(exc).__name__})") from exc
    finally:
        session.close()
    failed = response.get("FailedSOPSequence") if response is not None else None
    if failed:
        raise PermanentSendError(f"Node {destination.name} refused {len(failed)} object(s) (FailedSOPSequence)")
    return SendResult(via="stow-rs", detail=f"{len(datasets)} object(s) stored by STOW-RS at node {destination.name}")


def echo(destination: Destination, *, calling_ae_title: str, timeouts: Timeouts = Timeouts()) -> EchoResult:
    """C-ECHO a DIMSE node; for a DICOMweb node, a QIDO-RS search for one study (does it answer, do we get in?)."""
    if destination.uses_dicomweb:
        return _dicomweb_ping(destination, timeouts=timeouts)
    try:
        host, port, called = _check_dimse_target(destination)
    except PermanentSendError as exc:
        return EchoResult(ok=False, message=exc.reason)
    ae = _ae(calling_ae_title, timeouts)
    ae.add_requested_context(Verification)
    rejection = _Rejection()
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=rejection.handlers)
    if not assoc.is_established:
        return EchoResult(ok=False, message=_association_failure(destination, assoc, rejection).reason)
    try:
        status = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    code = getattr(status, "Status", None)
    if code == 0x0000:
        return EchoResult(ok=True, message=f"C-ECHO to {called}@{host}:{port} succeeded")
    answer = "no answer" if code is None else f"status 0x{code:04X}"
    return EchoResult(ok=False, message=f"C-ECHO to {called}@{host}:{port} failed: {answer}")


def _dicomweb_ping(destination: Destination, *, timeouts: Timeouts) -> EchoResult:
    session = _http_session(destination)
    url = f"{destination.dicomweb_url.rstrip('/')}/studies"
    try:
        response = session.get(
            url, params={"limit": "1"}, headers={"Accept": "application/dicom+json"}, timeout=timeouts.http
        )
    except requests.RequestException as exc:
        return EchoResult(
            ok=False, message=f"DICOMweb server of node {destination.name} unreachable ({type(exc).__name__})"
        )
    finally:
        session.close()
    if response.status_code in (200, 204):
        return EchoResult(
            ok=True, message=f"DICOMweb server of node {destination.name} answered (QIDO-RS {response.status_code})"
        )
    return EchoResult(
        ok=False, message=f"DICOMweb server of node {destination.name} answered HTTP {response.status_code}"
    )
