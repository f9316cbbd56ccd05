"""An upload is done once its row is committed: a retry of the same file is that study, a broker outage is no error."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from diagnosis.models import ModelVersion, Study
from diagnosis.services.studies import StudyUpload, study_create_from_upload
from pneumoweb.celery import app as celery_app
from tests.diagnosis.conftest import png_bytes


def _upload(user: User, data: bytes, **fields: str) -> StudyUpload:
    return study_create_from_upload(
        upload=SimpleUploadedFile("scan.png", data), uploaded_by=user, source=Study.Source.API, **fields
    )


@pytest.mark.django_db
def test_the_same_file_from_the_same_uploader_is_the_existing_study(
    uploader: User, serving_version: ModelVersion, enqueue: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = _upload(uploader, png_bytes())
        again = _upload(uploader, png_bytes())
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.study.id == first.study.id
    assert Study.objects.count() == 1
    enqueue.assert_called_once_with(str(first.study.id))  # the retry queues nothing new


@pytest.mark.django_db
def test_another_uploader_patient_or_accession_gets_its_own_study(
    uploader: User, reader: User, serving_version: ModelVersion, enqueue: Any
) -> None:
    first = _upload(uploader, png_bytes())
    assert not _upload(reader, png_bytes()).duplicate
    assert not _upload(uploader, png_bytes(), patient_id="P-2").duplicate
    assert not _upload(uploader, png_bytes(), accession_number="A-2").duplicate
    assert not _upload(uploader, png_bytes(value=91)).duplicate  # another file
    assert Study.objects.exclude(id=first.study.id).count() == 4


@pytest.mark.django_db
def test_a_failed_study_or_one_older_than_the_window_is_not_returned(
    uploader: User, serving_version: ModelVersion, enqueue: Any, settings: Any
) -> None:
    failed = _upload(uploader, png_bytes()).study
    Study.objects.filter(id=failed.id).update(status=Study.Status.FAILED)
    old = _upload(uploader, png_bytes()).study
    assert old.id != failed.id  # a failed study may be sent again
    Study.objects.filter(id=old.id).update(
        created_at=old.created_at - timedelta(seconds=settings.PNEUMO_UPLOAD_DEDUPE_SECONDS + 1)
    )
    assert _upload(uploader, png_bytes()).study.id not in (failed.id, old.id)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uploads_of_the_same_file_make_one_study(
    uploader: User, serving_version: ModelVersion, enqueue: Any
) -> None:
    barrier, results, errors = threading.Barrier(2), [], []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(_upload(uploader, png_bytes()))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(result.duplicate for result in results) == [False, True]
    assert len({result.study.id for result in results}) == 1
    assert Study.objects.count() == 1


@pytest.fixture
def unreachable_broker() -> Iterator[None]:
    """Send tasks for real, to a Redis port where nothing listens (as when the broker is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager)
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = f"redis://127.0.0.1:{port}/0", False
    celery_app._after_fork()  # drop pooled connections to the previous broker
    yield
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = previous
    celery_app._after_fork()


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_after_commit_keeps_the_study_and_is_logged(
    uploader: User, serving_version: ModelVersion, unreachable_broker: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="diagnosis.services.dispatch"):
        result = _upload(uploader, png_bytes())
    assert not result.duplicate
    assert Study.objects.get().status == Study.Status.QUEUED
    assert any("broker unavailable" in record.getMessage() for record in caplog.records)
