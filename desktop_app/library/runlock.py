"""Who is writing a story run: an OS file lock held by the writing process.

A run in status ``running`` is live only while its writer holds the lock file named by the run's
owner token. The operating system releases the lock when the process ends in any way (crash,
SIGKILL, power button), so a ``running`` run whose lock can be taken is stale: its writer is gone.
This needs no clock and no process-id reuse guesswork.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO

if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            handle.seek(0)  # both sides must lock the same byte
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        with contextlib.suppress(OSError):
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    # flock (not lockf): its locks belong to the open file, so a second open in the same process
    # sees the first one's lock, which is what lets a process recover runs while writing its own.
    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class RunLock:
    """An exclusive lock on one file, held until ``release`` or the end of the process."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle

    @classmethod
    def try_acquire(cls, path: Path) -> RunLock | None:
        """Take the lock at ``path`` (created if needed), or return None if another holds it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
        if not _try_lock(handle):
            handle.close()
            return None
        return cls(path, handle)

    def release(self, *, remove: bool = True) -> None:
        """Give the lock up and (by default) delete its file."""
        if self._handle is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        _unlock(self._handle)
        self._handle.close()
        self._handle = None


def is_held(path: Path) -> bool:
    """Whether a live process (this one included) holds the lock at ``path``."""
    if not path.exists():
        return False
    lock = RunLock.try_acquire(path)
    if lock is None:
        return True
    lock.release(remove=False)
    return False
