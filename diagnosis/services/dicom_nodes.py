"""DICOM nodes (PACS, modalities, routers): add, change, remove, test. Audited without their credentials.

The admin and ``manage.py dicom_node`` both call these. The caller checks the user may manage nodes (staff).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from diagnosis.exceptions import InvalidInputError
from diagnosis.interop.dicom_send import EchoResult, echo, url_without_credentials
from diagnosis.models import AuditAction, DicomNode
from diagnosis.services.audit import audit_record
from diagnosis.services.pacs_results import node_destination, send_timeouts

# What the audit log may say about a node. Never ``username`` or ``password``; and never the DICOMweb URL as typed,
# which may carry ``user:password@`` (only its scheme, host and path are recorded).
AUDITED_FIELDS = ("name", "ae_title", "host", "port", "sends_studies", "receives_results", "enabled")
CREDENTIAL_FIELDS = frozenset({"username", "password"})
# AE titles (PS3.5 6.2, VR AE): up to 16 characters of the default repertoire, no backslash or control characters.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")

Actor = User | AnonymousUser | None


def _node_details(node: DicomNode) -> dict[str, Any]:
    details: dict[str, Any] = {field: getattr(node, field) for field in AUDITED_FIELDS}
    details["dicomweb_url"] = url_without_credentials(node.dicomweb_url)
    details["has_credentials"] = bool(node.username or node.password)
    return details


def dicom_node_validate(node: DicomNode) -> None:
    """Raise ``InvalidInputError`` unless the node can do what it is marked for."""
    try:
        node.full_clean(validate_unique=True)
    except ValidationError as exc:
        raise InvalidInputError(
            "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
        ) from exc
    if node.ae_title and (not _AE_TITLE.match(node.ae_title) or not node.ae_title.strip()):
        raise InvalidInputError(f"ae_title must be 1-16 characters, no backslash. Received: {node.ae_title!r}")
    if node.sends_studies and not node.ae_title.strip():
        raise InvalidInputError("A node that sends studies needs its AE title (the calling AE title we accept).")
    if node.receives_results and not node.dicomweb_url and not (node.ae_title and node.host and node.port):
        raise InvalidInputError("A node that receives results needs an AE title, host and port, or a DICOMweb URL.")


@transaction.atomic
def dicom_node_create(
    *,
    name: str,
    ae_title: str = "",
    host: str = "",
    port: int | None = None,
    dicomweb_url: str = "",
    username: str = "",
    password: str = "",
    sends_studies: bool = True,
    receives_results: bool = False,
    enabled: bool = True,
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> DicomNode:
    """Add a node (``manage.py dicom_node add``)."""
    node = DicomNode(
        name=name,
        ae_title=ae_title,
        host=host,
        port=port,
        dicomweb_url=dicomweb_url,
        username=username,
        password=password,
        sends_studies=sends_studies,
        receives_results=receives_results,
        enabled=enabled,
    )
    return dicom_node_save(node=node, created=True, changed_fields=[], actor=actor, request=request)


@transaction.atomic
def dicom_node_save(
    *,
    node: DicomNode,
    created: bool,
    changed_fields: list[str],
    actor: Actor = None,
    request: HttpRequest | None = None,
) -> DicomNode:
    """Save a node whose fields the caller has set (the admin's form), and audit what changed."""
    dicom_node_validate(node)
    node.save()
    changed = sorted({"credentials" if field in CREDENTIAL_FIELDS else field for field in changed_fields})
    audit_record(
        action=AuditAction.DICOM_NODE_CHANGED,
        subject_type="dicom_node",
        subject_id=str(node.pk),
        actor=actor,
        request=request,
        details={**_node_details(node), "created": created, "changed": changed},
    )
    return node


@transaction.atomic
def dicom_node_remove(*, node: DicomNode, actor: Actor = None, request: HttpRequest | None = None) -> None:
    """Remove a node. Its sends keep the node's name (``ResultSend.node_name``)."""
    details = _node_details(node)
    node_id = node.pk
    node.delete()
    audit_record(
        action=AuditAction.DICOM_NODE_REMOVED,
        subject_type="dicom_node",
        subject_id=str(node_id),
        actor=actor,
        request=request,
        details=details,
    )


def dicom_node_echo(*, node: DicomNode) -> EchoResult:
    """C-ECHO the node (or a QIDO-RS request to its DICOMweb server). Writes nothing."""
    return echo(node_destination(node), calling_ae_title=settings.PNEUMO_DICOM_AE_TITLE, timeouts=send_timeouts())
