"""The album library: albums, photos and story runs in one SQLite file.

``Library`` is the stores in one object, by inheritance: it subclasses ``PhotoStore``,
``RunStore`` and ``CastStore``, which all extend ``AlbumStore`` and share its one connection (``database``).
Open it with ``Library.open()``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from desktop_app import paths
from desktop_app.errors import is_disk_full
from desktop_app.library import schema
from desktop_app.library.albums import AlbumRef
from desktop_app.library.cast import CastStore
from desktop_app.library.database import BUSY_TIMEOUT_S, LIBRARY_FILE_NAME, library_disk_full
from desktop_app.library.errors import LibraryError, LibraryVersionError
from desktop_app.library.photos import ImportProgress, PhotoStore
from desktop_app.library.runs import RunStore

__all__ = ["AlbumRef", "ImportProgress", "Library"]

_DB_SUFFIXES = {".sqlite3", ".sqlite", ".db"}


class Library(PhotoStore, RunStore, CastStore):
    """Albums, photos and story runs. Open with ``Library.open()``; close when done."""

    def __init__(self, conn: sqlite3.Connection, db_path: Path, thumbnails_dir: Path) -> None:
        super().__init__(conn, db_path)
        self.thumbnails_dir = thumbnails_dir
        self._buffers = {}
        self._run_locks = {}

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        thumbnails_dir: str | os.PathLike[str] | None = None,
        migrate_to: int = schema.SCHEMA_VERSION,
    ) -> Library:
        """Open (creating and upgrading as needed) the library database.

        ``path`` is the database file, or a folder that holds (or will hold) ``library.sqlite3``
        — e.g. the ``library_dir`` setting. Default: ``library.sqlite3`` in the user data folder
        (moved by ``STORYTELLER_HOME``). ``migrate_to`` exists for migration tests.
        """
        db_path = cls.resolve_path(path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise LibraryError(
                f"the library {db_path} cannot be opened ({err}): check the folder's permissions"
            ) from err
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL survives an application crash; only a power cut may lose the
            # last commits, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            schema.migrate(conn, db_path, target=migrate_to)
        except sqlite3.DatabaseError as err:
            conn.close()
            if is_disk_full(err, db_path.parent):
                raise library_disk_full(db_path.parent) from err
            raise LibraryVersionError(
                f"{db_path} is not a Storyteller library or is damaged ({err}): choose another "
                "library folder or restore it from a backup"
            ) from err
        except BaseException:
            conn.close()
            raise
        thumbs = Path(thumbnails_dir) if thumbnails_dir is not None else paths.thumbnails_dir()
        return cls(conn, db_path, thumbs)

    @staticmethod
    def resolve_path(path: str | os.PathLike[str] | None) -> Path:
        """The database file for ``path`` (a file, a folder, or None for the default)."""
        if path is None:
            return paths.data_dir() / LIBRARY_FILE_NAME
        candidate = Path(path).expanduser().absolute()
        if candidate.is_dir() or candidate.suffix.lower() not in _DB_SUFFIXES:
            return candidate / LIBRARY_FILE_NAME
        return candidate

    def close(self) -> None:
        """Write any buffered run output and close the database."""
        with self._lock:
            for run_id in list(self._buffers):
                with contextlib.suppress(LibraryError, sqlite3.Error):
                    self.flush_output(run_id)
            self._conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
