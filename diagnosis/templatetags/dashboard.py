"""Small display helpers for the dashboard templates."""

from __future__ import annotations

from typing import Any

from django import template

from diagnosis.selectors import study_header
from diagnosis.selectors.performance import population_note

register = template.Library()


@register.filter
def percent(value: Any, digits: int = 1) -> str:
    """0.873 → "87.3 %"; empty for missing values."""
    if value is None or value == "":
        return ""
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return ""


@register.filter
def metadata_label(key: Any) -> str:
    """``patient_sex`` → "Patient sex", ``sop_instance_uid`` → "SOP Instance UID" for DICOM metadata tables."""
    return study_header.metadata_label(str(key))


@register.simple_tag(name="population_note")
def population_note_tag() -> str:
    return population_note()
