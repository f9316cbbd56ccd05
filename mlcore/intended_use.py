"""Intended use: who a model was trained on, and whether one study falls outside it.

A model trained on the Kermany data has only seen pediatric (ages 1–5) PA/AP radiographs. Its output on a
32-year-old's lateral view is not supported by its validation, so every prediction records the ways the study
differs from the training population (the manifest's ``intended_use``) and the reader sees them.

The manifest's ``intended_use`` is a plain JSON object::

    {"age_years": [1, 5], "views": ["PA", "AP"], "modalities": ["CR", "DX"],
     "population": "Kermany pediatric chest X-rays, ages 1–5 (Guangzhou)"}

Every key is optional; a missing key is not checked. Pure Python: no Django, no NumPy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypedDict

from mlcore.training_config import KERMANY_POPULATION

#: The Kermany 2018 pediatric data set (the training data of the specification's model).
KERMANY_INTENDED_USE: dict[str, Any] = {
    "age_years": [1, 5],
    "views": ["PA", "AP"],
    "modalities": ["CR", "DX"],
    "population": KERMANY_POPULATION,
}

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


class IntendedUseWarning(TypedDict):
    """One way a study is outside the model's intended use (stored as JSON with the prediction)."""

    code: str  # "age" | "view" | "modality"
    message: str


def default_intended_use(population: str) -> dict[str, Any] | None:
    """The intended use of a manifest written before ``intended_use`` existed, from its ``population`` text.

    Models trained (or imported) on the Kermany data say so in ``population``; for anything else the intended use
    was never recorded and None is returned (no check is possible).
    """
    if KERMANY_POPULATION in population or "kermany" in population.lower():
        return dict(KERMANY_INTENDED_USE)
    return None


def parse_dicom_age(value: str) -> float | None:
    """A DICOM Age String (``"054Y"``, ``"006M"``, ``"010W"``, ``"003D"``) in years, or None when unusable.

    A bare number (``"54"``, as the RSNA files write it against the AS value representation) is read as years:
    refusing it would hide exactly the adult studies the check is for.

    Examples:
        >>> parse_dicom_age("054Y")
        54.0
        >>> parse_dicom_age("006M")
        0.5
    """
    match = _AGE.match(value or "")
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_YEARS[(match.group(2) or "Y").upper()]


def _age_warning(age_range: Any, patient_age: str) -> IntendedUseWarning | None:
    age = parse_dicom_age(patient_age)
    if age is None or not isinstance(age_range, (list, tuple)) or len(age_range) != 2:
        return None
    low, high = float(age_range[0]), float(age_range[1])
    # "Ages 1–5" includes a child of 5 years 11 months: compare whole years, as the data set's ages are stated.
    if low <= math.floor(age + 1e-9) <= high:
        return None
    shown = f"{age:g} years" if age >= 1 else f"{round(age * 12)} months"
    return {
        "code": "age",
        "message": f"Patient age {shown} is outside the training population's ages ({low:g}–{high:g} years).",
    }


def _listed_warning(code: str, label: str, allowed: Any, value: str) -> IntendedUseWarning | None:
    value = (value or "").strip().upper()
    if not value or not isinstance(allowed, (list, tuple)) or not allowed:
        return None
    if value in {str(item).upper() for item in allowed}:
        return None
    return {
        "code": code,
        "message": f"{label} {value} is not one the model was trained on ({', '.join(str(a) for a in allowed)}).",
    }


def intended_use_warnings(
    intended_use: Mapping[str, Any] | None, *, patient_age: str = "", view_position: str = "", modality: str = ""
) -> list[IntendedUseWarning]:
    """How a study falls outside ``intended_use``: age outside the range, another view, another modality.

    A value the study does not carry (a PNG has no age) is not a warning: nothing is known to be wrong.

    Args:
        intended_use: The manifest's ``intended_use`` (None: not recorded, so nothing is checked).
        patient_age: DICOM PatientAge (``"054Y"``).
        view_position: DICOM ViewPosition (``"PA"``, ``"AP"``, ``"LL"`` ...).
        modality: DICOM Modality (``"CR"``, ``"DX"``, ``"CT"`` ...).

    Returns:
        The warnings, in the order age, view, modality (empty when the study is inside the intended use).
    """
    if not intended_use:
        return []
    found = [
        _age_warning(intended_use.get("age_years"), patient_age),
        _listed_warning("view", "View position", intended_use.get("views"), view_position),
        _listed_warning("modality", "Modality", intended_use.get("modalities"), modality),
    ]
    return [warning for warning in found if warning is not None]
