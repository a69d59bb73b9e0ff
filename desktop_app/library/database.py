"""The library's SQLite connection: one lock, write transactions, and the errors they raise.

One connection is safe to share between threads: every call holds the lock. Several processes
may open the same library: the database runs in WAL mode with a busy timeout, so readers never
wait for a run being written and writers queue briefly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop_app.errors import disk_full_error, is_disk_full
from desktop_app.library import schema
from desktop_app.library.errors import LibraryDiskFullError, LibraryError

LIBRARY_FILE_NAME = "library.sqlite3"
BUSY_TIMEOUT_S = 15.0


def now() -> str:
    """The current time as stored: ISO 8601, UTC, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def to_json(value: Any) -> str:
    """``value`` as stored in a JSON column."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class Database:
    """The connection every store of the library shares, and its lock."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path) -> None:
        self._conn = conn
        self.path = db_path
        self._lock = threading.RLock()

    @property
    def root(self) -> Path:
        """The folder that holds the database (and photos copied in from bundles)."""
        return self.path.parent

    @property
    def schema_version(self) -> int:
        with self._lock:
            return schema.schema_version(self._conn)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken up front, so it never fails half-way on a lock)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise self._write_error(err) from err
            try:
                yield self._conn
            except sqlite3.OperationalError as err:
                self._conn.execute("ROLLBACK")
                raise self._write_error(err) from err
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as err:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise self._write_error(err) from err

    def _write_error(self, err: sqlite3.OperationalError) -> LibraryError:
        if is_disk_full(err, self.root):
            return library_disk_full(self.root)
        if "locked" in str(err) or "busy" in str(err):
            return LibraryError(
                f"the library {self.path} stayed busy for {BUSY_TIMEOUT_S:.0f} s ({err}): "
                "another program is writing to it; try again when it is done"
            )
        return LibraryError(
            f"the library {self.path} cannot be written ({err}): check free disk space and the "
            "folder's permissions"
        )


def library_disk_full(folder: Path) -> LibraryDiskFullError:
    """The library's disk is full: said as such, never as damage (its stories are all there)."""
    full = disk_full_error(
        folder,
        what="the library",
        kept="nothing was lost: every story saved before is still in the library",
    )
    return LibraryDiskFullError(str(full), folder)
