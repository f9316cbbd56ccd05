"""The radiologist's finding as the interop builders (DICOM SR, FHIR) see it: plain values, no Django.

The same values as ``diagnosis.models.Review.Finding``; callers convert with ``ReadingFinding(review.finding)``.
Only Normal and Pneumonia make a pneumonia call (present/absent); the other two are coded as what they are.
"""

from __future__ import annotations

from enum import StrEnum


class ReadingFinding(StrEnum):
    NORMAL = "NORMAL"
    PNEUMONIA = "PNEUMONIA"
    OTHER_ABNORMALITY = "OTHER_ABNORMALITY"
    NON_DIAGNOSTIC = "NON_DIAGNOSTIC"

    @property
    def makes_pneumonia_call(self) -> bool:
        return self in (ReadingFinding.NORMAL, ReadingFinding.PNEUMONIA)
