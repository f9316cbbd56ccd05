"""Exceptions raised by :mod:`mlcore`.

Every :class:`ImageError` carries a message written for the person who uploaded
the file (``str(exc)`` is shown to them as is), so it never contains a
traceback or library jargon beyond the format name.

The classes keep their constructor arguments in ``exc.args`` so that they
survive pickling and Celery's exception serialisation (both rebuild an
exception as ``cls(*exc.args)``).
"""

from __future__ import annotations


class ImageError(ValueError):
    """Base class for refused input images. ``str(exc)`` is a sentence a user understands."""


class EmptyImageError(ImageError):
    """The file has zero bytes, or the image it describes has no pixels."""


class UnsupportedFormatError(ImageError):
    """The bytes are not PNG, JPEG or DICOM (checked by magic bytes, never by file name).

    Attributes:
        hint: What the bytes look like instead (e.g. ``"BMP image"``), or ``""``.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class CorruptImageError(ImageError):
    """A PNG, JPEG or DICOM file that is truncated or cannot be decoded."""


class ImageTooLargeError(ImageError):
    """The dimensions in the file header exceed the pixel limit (checked before decoding).

    Attributes:
        width: Width in pixels claimed by the header.
        height: Height in pixels claimed by the header.
        max_pixels: The limit that was exceeded (``width * height > max_pixels``).
    """

    def __init__(self, width: int, height: int, max_pixels: int) -> None:
        super().__init__(width, height, max_pixels)
        self.width = width
        self.height = height
        self.max_pixels = max_pixels

    def __str__(self) -> str:
        return (
            f"The image is {self.width} x {self.height} pixels "
            f"({self.width * self.height:,} pixels); the limit is {self.max_pixels:,} pixels."
        )


class ImageMemoryError(ImageError):
    """Decoding or screening the image needed more memory than this process may use.

    Workers run under an address-space limit; a file that passes every header check and still needs more (an
    unusually large image, or a decoder fooled by data the checks cannot see) ends its study with this reason
    instead of taking the machine's memory.
    """


class UnsupportedDicomError(ImageError):
    """A readable DICOM file this service cannot turn into a single 2-D radiograph.

    For example: no pixel data, several frames, a PALETTE COLOR photometric
    interpretation, or a transfer syntax no installed decoder plugin handles.
    """


class ArtifactError(Exception):
    """A model artifact (weights, manifest) is missing, inconsistent or unreadable."""
