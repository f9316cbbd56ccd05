"""Preprocessing configuration, saved with every model artifact.

The configuration is part of the model: a network trained on 384 px CLAHE
images gives meaningless scores on anything else. It is therefore written into
the model manifest (:meth:`PreprocessingConfig.to_dict`) and read back strictly
(:meth:`PreprocessingConfig.from_dict`): unknown keys, missing keys and other
schema versions are refused instead of being filled with today's defaults,
which may differ from the defaults the model was trained with.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Bumped whenever a field is added, removed or changes meaning.
SCHEMA_VERSION = 1

#: Accepted values of :attr:`PreprocessingConfig.interpolation`.
INTERPOLATIONS = ("area", "linear", "cubic")


@dataclass(frozen=True)
class PreprocessingConfig:
    """How a grayscale radiograph becomes a model input (see :mod:`mlcore.preprocessing`).

    Attributes:
        image_size: Side ``S`` of the square ``(S, S, channels)`` model input, in pixels.
        clahe_clip_limit: CLAHE contrast limit (OpenCV ``clipLimit``), > 0.
        clahe_tile_grid: CLAHE tile grid (tiles across, tiles down), OpenCV ``tileGridSize``.
        channels: Number of (identical) output channels; 3 for ImageNet-style backbones.
        interpolation: ``"area"`` uses ``cv2.INTER_AREA`` when shrinking (it averages
            pixels, so fine texture does not alias) and ``cv2.INTER_LINEAR`` when
            enlarging (``INTER_AREA`` degenerates to nearest-neighbour there);
            ``"linear"`` / ``"cubic"`` force ``INTER_LINEAR`` / ``INTER_CUBIC``.
        schema_version: Version of this dictionary layout, see :data:`SCHEMA_VERSION`.
    """

    image_size: int = 384
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: tuple[int, int] = (8, 8)
    channels: int = 3
    interpolation: str = "area"
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-serialisable data (the tile grid becomes a list)."""
        data = dataclasses.asdict(self)
        data["clahe_tile_grid"] = list(self.clahe_tile_grid)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessingConfig:
        """Rebuild a configuration written by :meth:`to_dict`, strictly.

        Args:
            data: Mapping with exactly the fields of this class.

        Returns:
            A validated configuration.

        Raises:
            ValueError: On unknown or missing keys, another ``schema_version``,
                wrongly typed or out-of-range values.
        """
        if not isinstance(data, Mapping):
            # ValueError, not TypeError: callers catch one error type for any bad manifest.
            raise ValueError(f"A preprocessing config must be a mapping. Received: {data!r}")
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"Unknown preprocessing config keys {unknown}. Received: {dict(data)!r}")
        # A missing key is refused rather than defaulted: the defaults of this
        # code may have changed since the model was trained.
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"Missing preprocessing config keys {missing}. Received: {dict(data)!r}")
        if data["schema_version"] != SCHEMA_VERSION or isinstance(data["schema_version"], bool):
            raise ValueError(
                f"Unsupported preprocessing schema_version; expected {SCHEMA_VERSION}. "
                f"Received: {data['schema_version']!r}"
            )
        grid = data["clahe_tile_grid"]
        if not isinstance(grid, (list, tuple)):
            raise ValueError(f"clahe_tile_grid must be a list of two integers. Received: {grid!r}")
        config = cls(**{**data, "clahe_tile_grid": tuple(grid)})
        config.validate()
        return config

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: Naming the offending field, with ``Received: <value>``.
        """
        if not _is_int(self.image_size) or self.image_size < 32:
            raise ValueError(f"image_size must be an integer >= 32. Received: {self.image_size!r}")
        clip = self.clahe_clip_limit
        if not _is_number(clip) or not math.isfinite(clip) or clip <= 0:
            raise ValueError(f"clahe_clip_limit must be a finite number > 0. Received: {clip!r}")
        grid = self.clahe_tile_grid
        if not (isinstance(grid, tuple) and len(grid) == 2 and all(_is_int(n) and n >= 1 for n in grid)):
            raise ValueError(f"clahe_tile_grid must be a tuple of two integers >= 1. Received: {grid!r}")
        if not _is_int(self.channels) or self.channels != 3:
            raise ValueError(f"channels must be 3. Received: {self.channels!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}. Received: {self.interpolation!r}")
        if not _is_int(self.schema_version) or self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version must be {SCHEMA_VERSION}. Received: {self.schema_version!r}")


def _is_int(value: object) -> bool:
    # bool is a subclass of int; True is not a valid image size.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
