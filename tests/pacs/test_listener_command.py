"""`manage.py dicom_listener` refuses bad arguments before it listens; the listener's accepted contexts."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from diagnosis.listener.scp import TRANSFER_SYNTAXES, build_ae
from diagnosis.services.pacs_ingest import ACCEPTED_SOP_CLASSES


@pytest.mark.parametrize(
    "args",
    [["--port", "0"], ["--port", "70000"], ["--ae-title", "A" * 17], ["--ae-title", "BAD\\AE"]],
)
def test_bad_arguments_are_refused(args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("dicom_listener", *args)


def test_the_listener_accepts_verification_and_the_image_classes_in_every_listed_syntax() -> None:
    ae = build_ae(ae_title="PNEUMOWEB", acse_timeout=5, dimse_timeout=5, network_timeout=5, maximum_associations=4)
    contexts = {cx.abstract_syntax: list(cx.transfer_syntax) for cx in ae.supported_contexts}
    assert set(contexts) == {"1.2.840.10008.1.1", *ACCEPTED_SOP_CLASSES}
    for sop_class in ACCEPTED_SOP_CLASSES:
        assert contexts[sop_class] == list(TRANSFER_SYNTAXES)
    assert ae.require_called_aet and ae.maximum_associations == 4
