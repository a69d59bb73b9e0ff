"""The one base of every error Storyteller reports to its user, and the words for a full disk.

Library code raises these; only ``desktop_app.cli`` and ``desktop_app.ui`` turn them into
messages. A message says what failed and what to do about it.

A full disk is said one way wherever the app writes (the library, exports, ``--out``, the
caches, thumbnails): ``disk_full_error`` names the folder, how much is needed when that is
known (else how much is free) and that nothing was lost; ``is_disk_full`` recognises one in
``ENOSPC``/``EDQUOT`` and SQLite's ``SQLITE_FULL`` (and an SQLite I/O error on a disk with
less than ``NEARLY_FULL_BYTES`` free, which is how a full disk shows up in a WAL write).
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path


class StorytellerError(Exception):
    """A problem the user can act on; ``str(err)`` is the message to show."""


class DiskFullError(StorytellerError):
    """A write failed because its disk is full; ``folder`` is where it was writing."""

    def __init__(self, message: str, folder: Path, needed: int | None = None) -> None:
        super().__init__(message)
        self.folder = folder
        self.needed = needed


# A disk with less free than this is taken as full when SQLite reports an I/O error on it.
NEARLY_FULL_BYTES = 1 << 20
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


def size_text(n_bytes: int) -> str:
    """1.23 GB, 45.6 MB, 12 kB, 512 B: sizes as every message says them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.{1 if unit != 'GB' else 2}f} {unit}"
    return f"{n_bytes} B"


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Free space on the disk of ``folder`` (or of its nearest existing parent); None if unknown."""
    path = Path(folder).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _causes(err: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def is_disk_full(err: BaseException, folder: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``err`` (or what caused it) is a full disk: ``ENOSPC``/``EDQUOT``, SQLite's
    ``SQLITE_FULL``, or, with ``folder``, an SQLite I/O error while that disk is nearly full."""
    for cause in _causes(err):
        if isinstance(cause, DiskFullError):
            return True
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(cause, OSError) and cause.errno is None and _nearly_full(folder):
            return True  # a short write ("32768 requested and 1136 written") has no errno
        if isinstance(cause, sqlite3.Error):
            code = (getattr(cause, "sqlite_errorcode", None) or 0) & 0xFF
            if code == _SQLITE_FULL or "database or disk is full" in str(cause):
                return True
            if (code == _SQLITE_IOERR or "disk I/O error" in str(cause)) and _nearly_full(folder):
                return True
    return False


def _nearly_full(folder: str | os.PathLike[str] | None) -> bool:
    free = free_bytes(folder) if folder is not None else None
    return free is not None and free < NEARLY_FULL_BYTES


def disk_full_error(
    folder: str | os.PathLike[str],
    *,
    needed: int | None = None,
    what: str = "",
    kept: str = "nothing was lost",
    then: str = "try again",
) -> DiskFullError:
    """The one message for a full disk: the folder, the room needed (else what is free), what to
    do and what was kept. ``what`` says what could not be written ("the story", "the library")."""
    where = Path(folder)
    free = free_bytes(where)
    if needed is not None:
        room = f"it needs about {size_text(needed)}"
        room += f", {size_text(free)} is free" if free is not None else ""
    else:
        room = f"{size_text(free)} is free" if free is not None else "no room is left"
    subject = f"{what} cannot be written: " if what else ""
    return DiskFullError(
        f"{subject}the disk of {where} is full ({room}): free some space there and {then}; {kept}",
        where,
        needed,
    )


def low_space_warning(
    folder: str | os.PathLike[str], expected: int, *, what: str = "the output"
) -> str:
    """A warning when ``folder``'s disk has less than twice the ``expected`` bytes free, else "".

    Said before a run, an export or a conversion starts: it may still fit, so it never refuses.
    """
    free = free_bytes(folder)
    if free is None or expected <= 0 or free >= 2 * expected:
        return ""
    return (
        f"the disk of {Path(folder)} has {size_text(free)} free and {what} needs about "
        f"{size_text(expected)}: it may fill up; free some space there first"
    )
