"""Rules shared by mlcore and the web app, defined once.

The web process imports this module through its gateway to check form and command input with exactly the rules
that training and calibration apply, so it must stay cheap: standard library only (no NumPy, no TensorFlow) and
no imports from the rest of :mod:`mlcore`.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
import re
from pathlib import Path

#: Lowest target sensitivity a threshold may be chosen for (inclusive). A screening model exists to catch
#: pneumonia; below one in two the threshold would trade missed cases for specificity, the opposite of its job.
TARGET_SENSITIVITY_MIN = 0.5
#: Upper bound of the target sensitivity (exclusive). A target of 1.0 does not describe an operating point: it
#: just fits the threshold to the lowest positive score of the calibration sample, a single outlier that says
#: nothing about the sensitivity on new patients.
TARGET_SENSITIVITY_MAX = 1.0

#: A version name is also the artifact's folder name under the model directory and appears in audit records and
#: on every report, so it is a plain name: letters, digits, ".", "_" and "-", starting with a letter or digit
#: (no "/" or "..": a name must never point outside the model directory), at most 100 characters.
VERSION_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: File name suffixes of Keras HDF5 files (legacy whole models and weights), compared case-insensitively.
H5_SUFFIXES = (".h5", ".hdf5")

_IMAGENET = "imagenet"
_NO_WEIGHTS = "none"


def check_target_sensitivity(value: object) -> float:
    """Return ``value`` as a float if it is an allowed target sensitivity, in [0.5, 1).

    The decision threshold is chosen as the highest one whose sensitivity on calibration data reaches this
    target, so the target is the clinical operating point of the model (see :data:`TARGET_SENSITIVITY_MIN` and
    :data:`TARGET_SENSITIVITY_MAX` for why the bounds are where they are).

    Args:
        value: The requested target, e.g. from a form, a command line or a training configuration.

    Returns:
        The target as a float.

    Raises:
        ValueError: ``value`` is not a real number (``bool`` included), is NaN or infinite, or lies outside
            [0.5, 1). The message names the value ("Received: ...").
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Target sensitivity must be a number. Received: {value!r}")
    target = float(value)
    if not math.isfinite(target) or not TARGET_SENSITIVITY_MIN <= target < TARGET_SENSITIVITY_MAX:
        raise ValueError(
            f"Target sensitivity must be in [{TARGET_SENSITIVITY_MIN:g}, {TARGET_SENSITIVITY_MAX:g}): a target of "
            f"{TARGET_SENSITIVITY_MAX:g} would only fit the threshold to the lowest positive score. Received: {value}"
        )
    return target


def is_valid_version_name(name: str) -> bool:
    """Return whether ``name`` matches :data:`VERSION_NAME_PATTERN`.

    Args:
        name: A proposed model version name.

    Returns:
        True for a plain name that is safe as a folder name and readable in audit records.
    """
    return VERSION_NAME_PATTERN.fullmatch(name) is not None


def default_version_name(now: _dt.datetime | None = None) -> str:
    """Return a version name built from the UTC time, such as ``"v20250101-120000"``.

    The leading ``v`` keeps the name from looking like a date or a number in lists and spreadsheets; UTC keeps names
    of runs started on different servers (or either side of a daylight-saving change) in chronological order.

    Args:
        now: The time to format (a naive datetime is taken as UTC); defaults to the current time.

    Returns:
        ``now`` in UTC formatted as ``"v%Y%m%d-%H%M%S"``; always a valid version name.
    """
    moment = now if now is not None else _dt.datetime.now(_dt.UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC)
    return moment.strftime("v%Y%m%d-%H%M%S")


def is_h5_path(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` names a Keras HDF5 file (``.h5`` or ``.hdf5``, any case).

    Only the name is looked at, not the file: a ``.h5`` model needs TensorFlow to read, so the web process uses
    this to send it to a worker before anything opens it.

    Args:
        path: A file path.

    Returns:
        True when the last suffix is one of :data:`H5_SUFFIXES`, compared case-insensitively.
    """
    return Path(path).suffix.lower() in H5_SUFFIXES


def parse_weights(value: str | None) -> str | None:
    """Interpret a base-weights option: ``"imagenet"``, ``"none"`` or the path of a local weights file.

    ``"imagenet"`` is every caller's default. A path must name an existing file now: training may start hours
    later in a worker, and a typo should be refused while the person who made it is still looking.

    Args:
        value: ``"imagenet"`` or ``"none"`` (any case), a file path, or ``None`` (already parsed: no weights).

    Returns:
        ``"imagenet"``; ``None`` for random initialisation (``"none"`` or ``None``); or the path, unchanged.

    Raises:
        ValueError: Anything else, including a path that is not an existing file.
    """
    if value is None or value.lower() == _NO_WEIGHTS:
        return None
    if value.lower() == _IMAGENET:
        return _IMAGENET
    if not Path(value).is_file():
        raise ValueError(
            f"Weights must be {_IMAGENET}, {_NO_WEIGHTS} or a path to an existing weights file. Received: {value!r}"
        )
    return value
