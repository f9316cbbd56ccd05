"""The DICOM listener: a pynetdicom Storage SCP (and Verification SCP) that hands each instance to the ingest service.

Each association runs in its own thread (pynetdicom). What happens per association:

1. ``EVT_REQUESTED``: the calling AE title must belong to an enabled DICOM node that may send studies, read from the
   database for every association (an admin's change applies to the next one). Otherwise A-ASSOCIATE-RJ
   (permanent, "calling AE title not recognised"). pynetdicom then checks the called AE title
   (``require_called_aet``) and the number of simultaneous associations (``maximum_associations``: the one over it
   is rejected, transient, "local limit exceeded").
2. ``EVT_C_STORE``: the dataset's bytes as received (``event.encoded_dataset()``, never ``event.dataset``: nothing
   is decoded here) go to :func:`diagnosis.services.pacs_ingest.dicom_instance_receive`; its outcome becomes the
   C-STORE status (:data:`DIMSE_STATUS`). No exception leaves a handler: one bad instance or a database blip
   answers a failure status and the listener carries on.
3. Release / abort: the thread's Django database connection is closed.
"""

from __future__ import annotations

import logging
import threading

from django.db import connections
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.events import Event, EventHandlerType
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from diagnosis.models import DicomStudy
from diagnosis.selectors.pacs_inbound import dicom_node_sender_for_ae_title
from diagnosis.services.pacs_ingest import ACCEPTED_SOP_CLASSES, IngestStatus, dicom_instance_receive

logger = logging.getLogger(__name__)

#: Transfer syntaxes accepted for every image SOP class: the uncompressed ones, JPEG baseline, JPEG 2000 (lossless
#: and lossy), JPEG-LS (lossless and near-lossless) and JPEG lossless SV1. Each has a decoder in the worker.
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, Non-Hierarchical, First-Order Prediction (SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Lossy (Near-Lossless)
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
)

#: C-STORE status for each ingest outcome (PS3.4 Annex B.2.3). A duplicate is a success: the image is stored.
DIMSE_STATUS: dict[IngestStatus, int] = {
    IngestStatus.STORED: 0x0000,
    IngestStatus.DUPLICATE: 0x0000,
    IngestStatus.OUT_OF_RESOURCES: 0xA700,  # Refused: Out of Resources
    IngestStatus.MISMATCH: 0xA900,  # Error: Data Set does not match SOP Class
    IngestStatus.WRONG_STUDY: 0xA900,  # (STOW-RS only)
    IngestStatus.CANNOT_UNDERSTAND: 0xC000,  # Error: Cannot understand
    IngestStatus.SOP_CLASS_NOT_SUPPORTED: 0x0122,  # Refused: SOP Class not supported
    IngestStatus.PROCESSING_FAILURE: 0x0110,  # Processing failure
}
PROCESSING_FAILURE = 0x0110


def _close_db_connections(event: Event | None = None) -> None:
    # Django connections are per thread, and pynetdicom runs each association in a new thread: close this one's.
    connections.close_all()


def _reject(assoc: Association, result: int, source: int, diagnostic: int) -> None:
    # As pynetdicom's own rejections do: send A-ASSOCIATE-RJ, then wait until the peer has it and the DUL stops
    # (without kill() the socket is shut before the PDU leaves, and the peer sees an abort instead of a reason).
    assoc.acse.send_reject(result, source, diagnostic)
    evt.trigger(assoc, evt.EVT_REJECTED, {})
    assoc.kill()
    _close_db_connections()


def handle_requested(event: Event) -> None:
    """Refuse an association from a calling AE title that no enabled sending node has (checked on every request)."""
    assoc = event.assoc
    calling = str(assoc.requestor.primitive.calling_ae_title if assoc.requestor.primitive else "").strip()
    try:
        allowed = dicom_node_sender_for_ae_title(calling) is not None
    except Exception:  # noqa: BLE001 - the database is down: refuse for now (transient), keep listening
        logger.exception("cannot read the DICOM node allow-list; refusing the association from %r", calling)
        _reject(assoc, 0x02, 0x01, 0x01)
        return
    if not allowed:
        logger.warning("association from calling AE %r refused: not an enabled sending DICOM node", calling)
        _reject(assoc, 0x01, 0x01, 0x03)  # rejected-permanent, service user, calling AE not recognised


def handle_store(event: Event) -> int:
    """Store one instance and answer its status; never raises."""
    calling = str(event.assoc.requestor.ae_title).strip()
    try:
        data = event.encoded_dataset()
    except Exception:  # noqa: BLE001 - the request's own meta cannot be encoded (hostile UIDs): cannot understand
        logger.warning("C-STORE from %r: request cannot be encoded as a file", calling, exc_info=True)
        return DIMSE_STATUS[IngestStatus.CANNOT_UNDERSTAND]
    try:
        node = dicom_node_sender_for_ae_title(calling)
        outcome = dicom_instance_receive(data=data, via=DicomStudy.Via.C_STORE, calling_ae_title=calling, node=node)
    except Exception:  # noqa: BLE001 - a database or storage failure fails this instance, not the listener
        logger.exception("C-STORE from %r failed", calling)
        _close_db_connections()  # it may be broken; the next instance opens a fresh one
        return PROCESSING_FAILURE
    return DIMSE_STATUS[outcome.status]


def handle_echo(event: Event) -> int:
    return 0x0000


def build_ae(
    *,
    ae_title: str,
    acse_timeout: float,
    dimse_timeout: float,
    network_timeout: float,
    maximum_associations: int,
) -> AE:
    """The Application Entity with the accepted presentation contexts and limits."""
    ae = AE(ae_title=ae_title)
    ae.require_called_aet = True
    ae.acse_timeout = acse_timeout
    ae.dimse_timeout = dimse_timeout
    ae.network_timeout = network_timeout
    ae.maximum_associations = maximum_associations
    ae.add_supported_context(Verification)
    for sop_class in ACCEPTED_SOP_CLASSES:
        ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
    return ae


HANDLERS: list[EventHandlerType] = [
    (evt.EVT_REQUESTED, handle_requested),
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
    (evt.EVT_RELEASED, _close_db_connections),
    (evt.EVT_ABORTED, _close_db_connections),
]


def serve(*, ae: AE, host: str, port: int, stop: threading.Event) -> None:
    """Listen until ``stop`` is set (SIGTERM / SIGINT), then close the server and every open association."""
    server = ae.start_server((host, port), block=False, evt_handlers=HANDLERS)
    assert server is not None  # noqa: S101 - start_server(block=False) returns the server
    logger.info("DICOM listener %s listening on %s:%d", ae.ae_title, host, port)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        logger.info("DICOM listener stopping")
        server.shutdown()
        ae.shutdown()
