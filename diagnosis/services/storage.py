"""Write files to the default storage without leaving debris, and sweep away files no row references.

A write that fails half-way (disk full, quota, I/O error) leaves a zero-byte or truncated file behind, and a
transaction that rolls back after its files were written leaves them unreferenced. ``storage_save`` removes its
own partial file and turns the ``OSError`` into a :class:`~diagnosis.exceptions.StorageError` a user can read;
``storage_sweep_orphans`` removes what got past that (a worker killed between writing and committing).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Model
from django.db.models.fields.files import FieldFile

from diagnosis.exceptions import StorageError, StorageFullError
from diagnosis.models import DicomInstance, Prediction, ResultObject, Study

logger = logging.getLogger(__name__)

# No space or quota left: 507. Any other failed write (EIO, EROFS, EACCES...) is the storage's fault too, not the
# file's, so it is a StorageError (503) as well: it passes once an admin has fixed the disk.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

# Every file field of the app, so the sweep knows every name a row may hold.
FILE_FIELDS: tuple[tuple[type[Model], str], ...] = (
    (Study, "file"),
    (Study, "display_image"),
    (Study, "display_image_16"),
    (Prediction, "heatmap"),
    (Prediction, "overlay"),
    (Prediction, "activation"),
    (DicomInstance, "file"),
    (ResultObject, "file"),
)
# Where every one of them is written (their ``upload_to``): the sweep looks nowhere else, so files an operator
# keeps beside it in the storage folder are never at risk.
SWEPT_FOLDER = "studies"


def storage_error_from(exc: OSError) -> StorageError:
    """The domain error for a failed write: ``StorageFullError`` (507) for no space/quota, else ``StorageError``."""
    if exc.errno in FULL_ERRNOS:
        return StorageFullError(errno=exc.errno)
    return StorageError(errno=exc.errno)


def storage_save(*, field_file: FieldFile, filename: str, data: bytes) -> str:
    """Store ``data`` as ``field_file``'s file (named by the field's ``upload_to``); nothing is left if it fails.

    The instance is not saved. Raises ``StorageError`` (``StorageFullError`` when out of space) on ``OSError``.
    """
    storage = field_file.storage
    name = field_file.field.generate_filename(field_file.instance, filename)
    existed = storage.exists(name)
    try:
        stored = storage.save(name, ContentFile(data), max_length=field_file.field.max_length)
    except OSError as exc:
        # FileSystemStorage creates the file before writing into it: without this, a full disk leaves a
        # zero-byte file. A name that existed before was another file's (the storage picked a new one).
        if not existed:
            with contextlib.suppress(OSError):
                storage.delete(name)
            with contextlib.suppress(OSError, NotImplementedError):
                os.rmdir(os.path.dirname(storage.path(name)))  # the upload's own folder, if it is left empty
        logger.error("storing %s failed: %s", name, exc)
        raise storage_error_from(exc) from exc
    field_file.name = stored
    return stored


def storage_delete_quietly(names: Iterable[str]) -> None:
    """Remove files written by work that did not commit; a failure here is only logged (the sweep retries)."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not remove %s; the orphan sweep will", name, exc_info=True)


# --- Orphan sweep ---------------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    removed_dirs: int = 0
    kept_young: int = 0
    skipped_links: int = 0


def _referenced_names() -> set[str]:
    names: set[str] = set()
    for model, field_name in FILE_FIELDS:
        names.update(model._default_manager.exclude(**{field_name: ""}).values_list(field_name, flat=True).iterator())
    return names


def _walk(top: str) -> Iterator[tuple[str, list[str], list[str], int]]:
    # fwalk works on directory descriptors and never follows a symlink: a link swapped in during the sweep cannot
    # lead it out of the storage root.
    yield from os.fwalk(top, topdown=False, follow_symlinks=False)


def storage_sweep_orphans(*, older_than_seconds: int, dry_run: bool = False) -> SweepReport:
    """Remove files under the storage's ``studies/`` folder that no row references, older than the grace period.

    The grace period protects work in flight: an upload writes its file before its row commits, a worker writes
    heatmaps before its transaction does. Symlinks are neither followed nor removed. Empty folders go too.
    """
    root = os.path.realpath(default_storage.path(""))
    top = os.path.join(root, SWEPT_FOLDER)
    if os.path.islink(top) or not os.path.isdir(top):
        return SweepReport()
    # Names are read before the files are listed: a file whose row commits meanwhile is young, so it is kept.
    referenced = _referenced_names()
    cutoff = time.time() - older_than_seconds
    report = SweepReport()
    emptied: set[str] = set()
    for dirpath, dirnames, filenames, dir_fd in _walk(top):
        relative_dir = os.path.relpath(dirpath, root)
        prefix = "" if relative_dir == "." else relative_dir.replace(os.sep, "/") + "/"
        removed_here = False
        for filename in filenames:
            try:
                info = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile
            if stat.S_ISLNK(info.st_mode):
                report.skipped_links += 1
                continue
            name = prefix + filename
            if not stat.S_ISREG(info.st_mode) or name in referenced:
                continue
            if info.st_mtime > cutoff:
                report.kept_young += 1
                continue
            if not dry_run:
                try:
                    os.unlink(filename, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
            report.removed.append(name)
            report.removed_bytes += info.st_size
            removed_here = True
        report.removed_dirs += _remove_empty_dirs(
            dirnames, dir_fd=dir_fd, prefix=prefix, cutoff=cutoff, emptied=emptied, dry_run=dry_run
        )
        if removed_here:
            emptied.add(prefix)
    logger.info(
        "orphan sweep%s: %d files (%d bytes) and %d empty folders removed, %d young files kept, %d symlinks skipped",
        " (dry run)" if dry_run else "",
        len(report.removed),
        report.removed_bytes,
        report.removed_dirs,
        report.kept_young,
        report.skipped_links,
    )
    return report


def _remove_empty_dirs(
    dirnames: list[str], *, dir_fd: int, prefix: str, cutoff: float, emptied: set[str], dry_run: bool
) -> int:
    """Remove empty subfolders that this sweep emptied or that are older than the grace period."""
    removed = 0
    for dirname in dirnames:
        try:
            info = os.stat(dirname, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            continue  # a symlink to a folder: listed among folders by fwalk, never touched
        if f"{prefix}{dirname}/" not in emptied and info.st_mtime > cutoff:
            continue  # a young folder may be an upload's, about to receive its file
        if dry_run:
            continue
        try:
            os.rmdir(dirname, dir_fd=dir_fd)
        except OSError:
            continue  # not empty
        removed += 1
        emptied.add(prefix)
    return removed
