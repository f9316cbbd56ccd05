"""Factories for studies that came from a PACS: a DicomStudy (one Study Instance UID) and its received instances.

``pacs_study(images=3)`` builds what the listener leaves behind after the stability window: one ``DicomStudy``,
``images`` ``DicomInstance`` rows received one second apart, and one completed ``Study`` (with a prediction) per
instance. No DICOM file is written: these rows are for display, API and FHIR tests.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from diagnosis.models import DicomInstance, DicomNode, DicomStudy, Study
from tests.factories import PredictionFactory, StudyFactory

CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


class DicomNodeFactory(DjangoModelFactory):
    class Meta:
        model = DicomNode
        django_get_or_create = ("name",)

    name = "orthanc"
    ae_title = "ORTHANC"
    host = "127.0.0.1"
    port = 4242
    sends_studies = True
    receives_results = True


class DicomStudyFactory(DjangoModelFactory):
    class Meta:
        model = DicomStudy

    study_instance_uid = factory.Sequence(lambda n: f"1.2.826.0.1.3680043.10.1234.{n + 1}")
    received_via = DicomStudy.Via.C_STORE
    calling_ae_title = "ORTHANC"
    node = factory.SubFactory(DicomNodeFactory)
    patient_id = factory.Sequence(lambda n: f"MRN{n:05d}")
    patient_name = "DOE^JANE"
    accession_number = factory.Sequence(lambda n: f"ACC{n:05d}")
    study_date = dt.date(2026, 11, 30)
    first_received_at = factory.LazyFunction(timezone.now)
    last_received_at = factory.LazyAttribute(lambda study: study.first_received_at)


class DicomInstanceFactory(DjangoModelFactory):
    class Meta:
        model = DicomInstance

    dicom_study = factory.SubFactory(DicomStudyFactory)
    sop_instance_uid = factory.LazyAttributeSequence(lambda o, n: f"{o.dicom_study.study_instance_uid}.1.{n + 1}")
    sop_class_uid = CR_IMAGE_STORAGE
    series_instance_uid = factory.LazyAttribute(lambda o: f"{o.dicom_study.study_instance_uid}.1")
    transfer_syntax_uid = "1.2.840.10008.1.2.1"
    file = factory.Sequence(lambda n: f"studies/dicom/2026/11/30/test-{n}.dcm")
    sha256 = "0" * 64
    size_bytes = 1024
    received_at = factory.LazyFunction(timezone.now)
    received_via = factory.LazyAttribute(lambda o: o.dicom_study.received_via)
    calling_ae_title = factory.LazyAttribute(lambda o: o.dicom_study.calling_ae_title)
    study = None


def pacs_study(*, images: int = 1, completed: bool = True, **dicom_study: Any) -> list[Study]:
    """``images`` screened studies of one DICOM study, in the order their instances were received."""
    parent = DicomStudyFactory(**dicom_study)
    via_web = parent.received_via == DicomStudy.Via.STOW_RS
    start = parent.first_received_at
    studies = []
    for number in range(images):
        received = start + dt.timedelta(seconds=number)
        study_fields = {
            "source": Study.Source.DICOMWEB if via_web else Study.Source.DICOM,
            "format": Study.Format.DICOM,
            "patient_id": parent.patient_id,
            "accession_number": parent.accession_number,
            "original_filename": "",
            "created_at": received,
            "dicom_metadata": {
                "study_instance_uid": parent.study_instance_uid,
                "patient_name": parent.patient_name,
                "study_date": parent.study_date.strftime("%Y%m%d") if parent.study_date else "",
                "modality": "CR",
            },
        }
        if completed:
            study = PredictionFactory(**{f"study__{key}": value for key, value in study_fields.items()}).study
        else:
            study = StudyFactory(**study_fields)
        DicomInstanceFactory(dicom_study=parent, received_at=received, study=study)
        studies.append(study)
    return studies
