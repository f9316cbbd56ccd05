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


def test_the_listener_process_never_imports_tensorflow() -> None:
    import subprocess
    import sys

    from tests.http.servers import ROOT

    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'pneumoweb.settings.test'; import django; "
        "django.setup(); import diagnosis.listener.scp, diagnosis.dicomweb.views, diagnosis.tasks; "
        "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), result.stdout


def test_docker_compose_runs_the_listener_and_a_worker_of_its_own_consumes_the_pacs_queue() -> None:
    import yaml

    from tests.http.servers import ROOT

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "dicom_listener" in services["dicom-listener"]["command"]
    assert "11112:11112" in services["dicom-listener"]["ports"]

    def queues(service: str) -> list[str]:
        return str(services[service]["command"]).split("-Q ", 1)[1].split()[0].split(",")

    assert queues("pacs-worker") == ["pacs"]
    assert "pacs" not in queues("worker")  # a slow PACS never holds up screening
