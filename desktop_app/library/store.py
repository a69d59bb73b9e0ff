"""The album library: albums, photos and story runs in one SQLite file.

One ``Library`` wraps one connection (safe to share between threads: every call holds a lock).
Several processes may open the same library: the database runs in WAL mode with a busy timeout,
so readers never wait for a run being written and writers queue briefly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from desktop_app import paths
from desktop_app.engine.events import FinishReason, RunResult
from desktop_app.fileio import sha256_file
from desktop_app.library import schema, storyjson, thumbnails
from desktop_app.library.errors import (
    AlbumExistsError,
    AlbumNotFoundError,
    LibraryError,
    LibraryVersionError,
    NotAnImageError,
    PhotoUnreadableError,
    RunNotFoundError,
)
from desktop_app.library.photofiles import (
    PhotoFacts,
    expand_paths,
    read_photo_facts,
    walk_files,
)
from desktop_app.library.records import (
    Album,
    DuplicatePhoto,
    FailedFile,
    ImportReport,
    Photo,
    RelinkedPhoto,
    RelinkReport,
    RunPhoto,
    RunSpec,
    RunStatus,
    StoryRun,
)
from desktop_app.library.runlock import RunLock, is_held

if TYPE_CHECKING:
    from desktop_app.library import bundle as bundle_module

logger = logging.getLogger(__name__)

LIBRARY_FILE_NAME = "library.sqlite3"
BUSY_TIMEOUT_S = 15.0
_DB_SUFFIXES = {".sqlite3", ".sqlite", ".db"}

AlbumRef = Union[Album, int, str]  # noqa: UP007 (a runtime alias on 3.10)
ImportProgress = Callable[[int, Path], None]  # (files looked at so far, current file)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _local_iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(timespec="seconds")


def _relink_skip_message(path: Path, err: OSError) -> str:
    """Why a relink candidate was skipped; the message names the file."""
    if isinstance(err, FileNotFoundError):
        return f"{path.name} vanished from {path.parent} while it was being searched: skipped"
    if isinstance(err, PermissionError):
        return f"{path.name} cannot be read: permission denied (check the file's permissions)"
    reason = err.strerror or str(err) or type(err).__name__
    return f"{path.name} cannot be read ({reason}): skipped; check the file"


@dataclass
class _OutputBuffer:
    """Streamed text not yet written to the database, and when it last was."""

    pending: list[str] = field(default_factory=list)
    pending_chars: int = 0
    last_flush: float = field(default_factory=time.monotonic)


class Library:
    """Albums, photos and story runs. Open with ``Library.open()``; close when done."""

    # A streaming run is written at most this often, or when this much text is waiting, so a
    # crash loses at most about half a second of output while a fast model costs few writes.
    flush_interval_s: float = 0.5
    flush_chars: int = 2000

    def __init__(self, conn: sqlite3.Connection, db_path: Path, thumbnails_dir: Path) -> None:
        self._conn = conn
        self.path = db_path
        self.thumbnails_dir = thumbnails_dir
        self._lock = threading.RLock()
        self._buffers: dict[int, _OutputBuffer] = {}
        self._run_locks: dict[int, RunLock] = {}

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

    @property
    def root(self) -> Path:
        """The folder that holds the database (and photos copied in from bundles)."""
        return self.path.parent

    @property
    def schema_version(self) -> int:
        with self._lock:
            return schema.schema_version(self._conn)

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
        if "locked" in str(err) or "busy" in str(err):
            return LibraryError(
                f"the library {self.path} stayed busy for {BUSY_TIMEOUT_S:.0f} s ({err}): "
                "another program is writing to it; try again when it is done"
            )
        return LibraryError(
            f"the library {self.path} cannot be written ({err}): check free disk space and the "
            "folder's permissions"
        )

    # -- albums ----------------------------------------------------------------------------

    _ALBUM_SELECT = """
        SELECT a.id, a.name, a.notes, a.created,
               (SELECT COUNT(*) FROM album_photos m WHERE m.album_id = a.id) AS photo_count,
               (SELECT COUNT(*) FROM runs r WHERE r.album_id = a.id) AS run_count
        FROM albums a
    """

    @staticmethod
    def _album_from_row(row: sqlite3.Row) -> Album:
        return Album(
            id=row["id"],
            name=row["name"],
            notes=row["notes"],
            created=row["created"],
            photo_count=row["photo_count"],
            run_count=row["run_count"],
        )

    def albums(self) -> list[Album]:
        """Every album, by name, with its photo and story counts."""
        with self._lock:
            rows = self._conn.execute(
                self._ALBUM_SELECT + " ORDER BY a.name COLLATE NOCASE"
            ).fetchall()
        return [self._album_from_row(row) for row in rows]

    def album(self, ref: AlbumRef) -> Album:
        """The album with this name (any letter case) or id, with fresh counts."""
        album_id = ref.id if isinstance(ref, Album) else ref
        with self._lock:
            if isinstance(album_id, int):
                row = self._conn.execute(
                    self._ALBUM_SELECT + " WHERE a.id = ?", (album_id,)
                ).fetchone()
            else:
                row = self._conn.execute(
                    self._ALBUM_SELECT + " WHERE a.name = ? COLLATE NOCASE",
                    (album_id.strip(),),
                ).fetchone()
            if row is None:
                names = [a.name for a in self.albums()]
        if row is None:
            known = f"albums: {', '.join(names)}" if names else "the library has no albums yet"
            what = f"id {album_id}" if isinstance(album_id, int) else f"named {album_id!r}"
            raise AlbumNotFoundError(f"no album {what} ({known}): check the name or create it")
        return self._album_from_row(row)

    @staticmethod
    def _clean_name(name: str) -> str:
        cleaned = " ".join(name.split())
        if not cleaned:
            raise LibraryError("an album needs a name: give it one with some letters in it")
        return cleaned

    def create_album(self, name: str, notes: str = "") -> Album:
        """A new, empty album. Names are unique, ignoring letter case."""
        cleaned = self._clean_name(name)
        try:
            with self._write() as conn:
                cursor = conn.execute(
                    "INSERT INTO albums (name, notes, created) VALUES (?, ?, ?)",
                    (cleaned, notes, _now()),
                )
        except sqlite3.IntegrityError:
            raise AlbumExistsError(
                f"an album named {cleaned!r} already exists: choose another name"
            ) from None
        return self.album(int(cursor.lastrowid or 0))

    def rename_album(self, ref: AlbumRef, new_name: str) -> Album:
        album = self.album(ref)
        cleaned = self._clean_name(new_name)
        try:
            with self._write() as conn:
                conn.execute("UPDATE albums SET name = ? WHERE id = ?", (cleaned, album.id))
        except sqlite3.IntegrityError:
            raise AlbumExistsError(
                f"an album named {cleaned!r} already exists: choose another name"
            ) from None
        return self.album(album.id)

    def set_notes(self, ref: AlbumRef, notes: str) -> Album:
        album = self.album(ref)
        with self._write() as conn:
            conn.execute("UPDATE albums SET notes = ? WHERE id = ?", (notes, album.id))
        return self.album(album.id)

    def delete_album(self, ref: AlbumRef) -> None:
        """Forget the album and its stories. The photo files are never touched."""
        album = self.album(ref)
        with self._write() as conn:
            conn.execute("DELETE FROM albums WHERE id = ?", (album.id,))

    # -- photos ----------------------------------------------------------------------------

    @staticmethod
    def _photo_from_row(row: sqlite3.Row) -> Photo:
        path = Path(row["path"])
        return Photo(
            id=row["id"],
            path=path,
            sha256=row["sha256"],
            size=row["size"],
            mtime=row["mtime"],
            width=row["width"],
            height=row["height"],
            captured_at=row["captured_at"],
            missing=not path.is_file(),
        )

    def photos(self, ref: AlbumRef) -> list[Photo]:
        """The album's photos in album order, each flagged ``missing`` if its file is gone."""
        album = self.album(ref)
        with self._lock:
            rows = self._conn.execute(
                """SELECT p.* FROM album_photos m JOIN photos p ON p.id = m.photo_id
                   WHERE m.album_id = ? ORDER BY m.position, m.rowid""",
                (album.id,),
            ).fetchall()
        return [self._photo_from_row(row) for row in rows]

    def photo(self, photo_id: int) -> Photo:
        with self._lock:
            row = self._conn.execute("SELECT * FROM photos WHERE id = ?", (photo_id,)).fetchone()
        if row is None:
            raise LibraryError(f"no photo with id {photo_id} in the library")
        return self._photo_from_row(row)

    def missing_photos(self, ref: AlbumRef) -> list[Photo]:
        return [photo for photo in self.photos(ref) if photo.missing]

    def _recorded_facts(self, given: Iterable[Path]) -> dict[Path, sqlite3.Row]:
        """The library's records for files at or under the ``given`` paths, by path.

        One range query per given path (not one per file), using the index on ``path``; when
        a path was recorded twice the newest record wins.
        """
        rows: list[sqlite3.Row] = []
        with self._lock:
            for path in given:
                text = str(path)
                # Files under a folder sort between "folder/" and "folder0" ("0" follows "/").
                prefix = text.rstrip(os.sep) + os.sep
                rows += self._conn.execute(
                    """SELECT id, path, size, mtime, sha256, width, height, captured_at
                       FROM photos WHERE path = ? OR (path >= ? AND path < ?)""",
                    (text, prefix, prefix[:-1] + chr(ord(os.sep) + 1)),
                ).fetchall()
        return {Path(row["path"]): row for row in sorted(rows, key=lambda row: row["id"])}

    @staticmethod
    def _unchanged_facts(path: Path, row: sqlite3.Row | None) -> PhotoFacts | None:
        """The recorded facts for ``path`` if the file is unchanged (same size and mtime)."""
        if row is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size != row["size"] or stat.st_mtime != row["mtime"]:
            return None
        return PhotoFacts(
            path=path,
            size=row["size"],
            mtime=row["mtime"],
            sha256=row["sha256"],
            width=row["width"],
            height=row["height"],
            captured_at=row["captured_at"],
        )

    def add_photos(
        self,
        ref: AlbumRef,
        photo_paths: Iterable[str | os.PathLike[str]],
        *,
        progress: ImportProgress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ImportReport:
        """Add files and folders (walked recursively) to the end of the album.

        Only files whose content is an image are added; other files inside folders are listed
        in ``skipped`` and files named explicitly that are not images are reported in
        ``failed``, each with a message naming it. A file whose content the album already
        holds is reported in ``duplicates`` and not added twice. The same content in another
        album is shared (one photo, several albums). Nothing is written to the photo files.

        ``should_stop`` is asked before each file: once it returns True no further file is
        looked at, the photos read so far are still added, and the report says ``stopped``.
        """
        album = self.album(ref)
        given = [Path(os.path.abspath(Path(p).expanduser())) for p in photo_paths]
        recorded = self._recorded_facts(given)
        facts: list[PhotoFacts] = []
        failed: list[FailedFile] = []
        skipped: list[Path] = []
        stopped = False
        for count, (path, explicit) in enumerate(expand_paths(given), 1):
            if should_stop is not None and should_stop():
                stopped = True
                break
            if progress is not None:
                progress(count, path)
            known = self._unchanged_facts(path, recorded.get(path))
            if known is not None:  # not re-read or re-hashed
                facts.append(known)
                continue
            try:
                facts.append(read_photo_facts(path))
            except PhotoUnreadableError as err:
                if isinstance(err, NotAnImageError) and not explicit:
                    skipped.append(path)
                else:
                    failed.append(FailedFile(path, str(err)))
        added: list[Photo] = []
        duplicates: list[DuplicatePhoto] = []
        added_at = _now()
        with self._write() as conn:
            in_album = set(self._album_photo_ids(conn, album.id))
            position = conn.execute(
                "SELECT COALESCE(MAX(position), 0) FROM album_photos WHERE album_id = ?",
                (album.id,),
            ).fetchone()[0]
            for fact in facts:
                row = conn.execute(
                    "SELECT * FROM photos WHERE sha256 = ?", (fact.sha256,)
                ).fetchone()
                if row is None:
                    cursor = conn.execute(
                        """INSERT INTO photos
                           (path, sha256, size, mtime, width, height, captured_at, added)
                           VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                        (
                            str(fact.path),
                            fact.sha256,
                            fact.size,
                            fact.mtime,
                            fact.width,
                            fact.height,
                            fact.captured_at,
                            added_at,
                        ),
                    )
                    photo = Photo(  # what was just written; no need to read it back
                        id=int(cursor.lastrowid or 0),
                        path=fact.path,
                        sha256=fact.sha256,
                        size=fact.size,
                        mtime=fact.mtime,
                        width=fact.width,
                        height=fact.height,
                        captured_at=fact.captured_at,
                    )
                else:
                    photo = self._photo_from_row(row)
                    if photo.missing and photo.path != fact.path:
                        # The known copy moved away and this file has its content: follow it.
                        conn.execute(
                            "UPDATE photos SET path = ?, mtime = ? WHERE id = ?",
                            (str(fact.path), fact.mtime, photo.id),
                        )
                        photo = replace(photo, path=fact.path, mtime=fact.mtime, missing=False)
                    if photo.id in in_album:
                        duplicates.append(DuplicatePhoto(fact.path, photo))
                        continue
                position += 1
                conn.execute(
                    "INSERT INTO album_photos (album_id, photo_id, position) VALUES (?, ?, ?)",
                    (album.id, photo.id, position),
                )
                in_album.add(photo.id)
                added.append(photo)
        return ImportReport(
            tuple(added), tuple(duplicates), tuple(failed), tuple(skipped), stopped=stopped
        )

    def _album_photo_ids(self, conn: sqlite3.Connection, album_id: int) -> list[int]:
        rows = conn.execute(
            "SELECT photo_id FROM album_photos WHERE album_id = ? ORDER BY position, rowid",
            (album_id,),
        ).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def _write_order(conn: sqlite3.Connection, album_id: int, photo_ids: Sequence[int]) -> None:
        conn.executemany(
            "UPDATE album_photos SET position = ? WHERE album_id = ? AND photo_id = ?",
            [(index, album_id, photo_id) for index, photo_id in enumerate(photo_ids, 1)],
        )

    def reorder(self, ref: AlbumRef, photo_ids: Sequence[int]) -> list[Photo]:
        """Put the album's photos in this order; ``photo_ids`` must name each photo once."""
        album = self.album(ref)
        with self._write() as conn:
            current = self._album_photo_ids(conn, album.id)
            if sorted(photo_ids) != sorted(current):
                raise LibraryError(
                    f"the new order must list each of the album's {len(current)} photos exactly "
                    f"once (got {len(photo_ids)} ids): list them all"
                )
            self._write_order(conn, album.id, photo_ids)
        return self.photos(album.id)

    def remove_photos(self, ref: AlbumRef, photo_ids: Iterable[int]) -> int:
        """Take photos out of the album (never off the disk); return how many were removed."""
        album = self.album(ref)
        wanted = set(photo_ids)
        with self._write() as conn:
            current = self._album_photo_ids(conn, album.id)
            unknown = wanted.difference(current)
            if unknown:
                raise LibraryError(
                    f"photos {sorted(unknown)} are not in album {album.name!r}: list the album "
                    "to see its photos"
                )
            conn.executemany(
                "DELETE FROM album_photos WHERE album_id = ? AND photo_id = ?",
                [(album.id, photo_id) for photo_id in wanted],
            )
            self._write_order(conn, album.id, [pid for pid in current if pid not in wanted])
        return len(wanted)

    def sort_by_capture_date(self, ref: AlbumRef) -> list[Photo]:
        """Order the album by capture date (EXIF), falling back to file time; ties keep order."""
        album = self.album(ref)
        photos = self.photos(album.id)
        ordered = sorted(
            enumerate(photos),
            key=lambda item: ((item[1].captured_at or _local_iso(item[1].mtime))[:19], item[0]),
        )
        return self.reorder(album.id, [photo.id for _, photo in ordered])

    def relink(
        self,
        ref: AlbumRef,
        folder: str | os.PathLike[str],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> RelinkReport:
        """Find the album's missing photos in ``folder`` (recursively) by content hash.

        Only files with the size of a missing photo are hashed, so large folders are cheap.
        ``should_stop`` is asked before each file: once it returns True the search ends, the
        photos found so far are relinked and the report says ``stopped``. A file that vanishes
        or cannot be read during the search is listed in ``unreadable`` and skipped.
        """
        album = self.album(ref)
        root = Path(folder).expanduser().absolute()
        if not root.is_dir():
            raise LibraryError(f"{root} is not a folder: name the folder the photos moved to")
        missing = self.missing_photos(album.id)
        by_size: dict[int, list[Photo]] = {}
        for photo in missing:
            by_size.setdefault(photo.size, []).append(photo)
        found: dict[int, tuple[Path, float]] = {}  # photo id -> (new path, its mtime)
        unreadable: list[FailedFile] = []
        stopped = False
        for candidate in walk_files(root):
            if not by_size:
                break
            if should_stop is not None and should_stop():
                stopped = True
                break
            # Every read of the candidate happens here, outside the write below: a file that
            # vanishes or cannot be read is reported and skipped, never fatal to the batch.
            try:
                size = candidate.stat().st_size
                waiting = by_size.get(size)
                if not waiting:
                    continue
                digest = sha256_file(candidate)
                after = candidate.stat()  # the mtime to record, and proof it is still there
            except OSError as err:
                unreadable.append(FailedFile(candidate, _relink_skip_message(candidate, err)))
                continue
            if after.st_size != size:
                unreadable.append(
                    FailedFile(
                        candidate,
                        f"{candidate.name} changed while it was being read: skipped (search "
                        "again once it is finished copying)",
                    )
                )
                continue
            for photo in waiting:
                if photo.sha256 == digest:
                    found[photo.id] = (candidate, after.st_mtime)
                    waiting.remove(photo)
                    break
            if not waiting:
                del by_size[size]
        relinked: list[RelinkedPhoto] = []
        with self._write() as conn:
            for photo in missing:
                if photo.id not in found:
                    continue
                new_path, mtime = found[photo.id]
                conn.execute(
                    "UPDATE photos SET path = ?, mtime = ? WHERE id = ?",
                    (str(new_path), mtime, photo.id),
                )
                relinked.append(RelinkedPhoto(photo.id, photo.path, new_path))
        still = tuple(photo for photo in missing if photo.id not in found)
        return RelinkReport(tuple(relinked), still, tuple(unreadable), stopped=stopped)

    def thumbnail_path(self, photo: Photo, size: int = 256) -> Path:
        """The photo's thumbnail (upright, fits ``size`` pixels), made now if not cached."""
        return thumbnails.thumbnail_path(self.thumbnails_dir, photo, size)

    # -- story runs ------------------------------------------------------------------------

    def _lock_file(self, token: str) -> Path:
        return self.root / "run-locks" / f"{token}.lock"

    def _writer_alive(self, owner_token: str | None) -> bool:
        """Whether a live process (this one included) still writes the run with this token."""
        return bool(owner_token) and is_held(self._lock_file(owner_token))

    def start_run(self, ref: AlbumRef, spec: RunSpec) -> int:
        """Record a new run as ``running`` and return its id.

        This process holds the run's lock until ``finish_run``/``fail_run``; if the process
        dies first, ``recover_interrupted`` marks the run interrupted with its partial output.
        """
        album = self.album(ref)
        token = uuid.uuid4().hex
        run_lock = RunLock.try_acquire(self._lock_file(token))
        if run_lock is None:  # a fresh random name: only a broken file system gets here
            raise LibraryError(f"cannot lock {self._lock_file(token)}: check the library folder")
        try:
            with self._write() as conn:
                run_photos = []
                for index, photo_id in enumerate(spec.photo_ids, 1):
                    row = conn.execute(
                        "SELECT path, sha256 FROM photos WHERE id = ?", (photo_id,)
                    ).fetchone()
                    if row is None:
                        raise LibraryError(f"no photo with id {photo_id} in the library")
                    run_photos.append(
                        RunPhoto(index, photo_id, Path(row["path"]), row["sha256"]).to_dict()
                    )
                cursor = conn.execute(
                    """INSERT INTO runs (album_id, status, created, photos, parameters, backend,
                                         model, owner_token, owner_pid)
                       VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        album.id,
                        _now(),
                        _json(run_photos),
                        _json(dict(spec.parameters)),
                        spec.backend,
                        _json(dict(spec.model)),
                        token,
                        os.getpid(),
                    ),
                )
        except BaseException:
            run_lock.release()
            raise
        run_id = int(cursor.lastrowid or 0)
        with self._lock:
            self._run_locks[run_id] = run_lock
            self._buffers[run_id] = _OutputBuffer()
        return run_id

    def append_output(self, run_id: int, text: str) -> None:
        """Add streamed text to a running run; written at most every ``flush_interval_s``."""
        with self._lock:
            buffer = self._buffers.setdefault(run_id, _OutputBuffer())
            buffer.pending.append(text)
            buffer.pending_chars += len(text)
            due = time.monotonic() - buffer.last_flush >= self.flush_interval_s
            if due or buffer.pending_chars >= self.flush_chars:
                self.flush_output(run_id)

    def flush_output(self, run_id: int) -> None:
        """Write the run's buffered text now."""
        with self._lock:
            buffer = self._buffers.get(run_id)
            if buffer is None:
                return
            if buffer.pending:
                text = "".join(buffer.pending)
                with self._write() as conn:
                    conn.execute(
                        "UPDATE runs SET raw_output = raw_output || ? "
                        "WHERE id = ? AND status = 'running'",
                        (text, run_id),
                    )
                buffer.pending.clear()
                buffer.pending_chars = 0
            buffer.last_flush = time.monotonic()

    def _end_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        error: str = "",
        result: RunResult | None = None,
    ) -> StoryRun:
        with self._lock:
            self.flush_output(run_id)
            self._buffers.pop(run_id, None)
            run = self.run(run_id)
            if run.status is not RunStatus.RUNNING:
                raise LibraryError(f"story run {run_id} has already ended ({run.status.value})")
            photos = run.photos
            raw_output = run.raw_output
            backend = run.backend
            model = dict(run.model)
            timings = dict(run.timings)
            if result is not None:
                raw_output = result.raw_output
                backend = result.backend or backend
                model.setdefault("name", result.model)
                timings = result.timings.to_dict()
                photos = (
                    tuple(
                        replace(
                            photo,
                            original_size=info.original_size,
                            prepared_size=info.prepared_size,
                            tokens=info.tokens,
                        )
                        for photo, info in zip(photos, result.photos, strict=False)
                    )
                    + photos[len(result.photos) :]
                )
            story = storyjson.parse_story_json(raw_output, photos)
            with self._write() as conn:
                conn.execute(
                    """UPDATE runs SET status = ?, finished = ?, raw_output = ?, story_json = ?,
                              photos = ?, backend = ?, model = ?, timings = ?, error = ?,
                              owner_token = NULL
                       WHERE id = ?""",
                    (
                        status.value,
                        _now(),
                        raw_output,
                        _json(story) if story is not None else None,
                        _json([photo.to_dict() for photo in photos]),
                        backend,
                        _json(model),
                        _json(timings),
                        error,
                        run_id,
                    ),
                )
            run_lock = self._run_locks.pop(run_id, None)
        if run_lock is not None:
            run_lock.release()
        return self.run(run_id)

    def finish_run(self, run_id: int, result: RunResult) -> StoryRun:
        """End a run with the backend's result: ``complete``, or ``stopped`` if cancelled."""
        cancelled = result.finish_reason is FinishReason.CANCELLED
        status = RunStatus.STOPPED if cancelled else RunStatus.COMPLETE
        return self._end_run(run_id, status, result=result)

    def stop_run(self, run_id: int) -> StoryRun:
        """End a run the user stopped before the backend returned a result; output is kept."""
        return self._end_run(run_id, RunStatus.STOPPED)

    def fail_run(self, run_id: int, message: str) -> StoryRun:
        """End a run that an error stopped; its partial output is kept."""
        return self._end_run(run_id, RunStatus.FAILED, error=message)

    @staticmethod
    def _run_from_row(row: sqlite3.Row) -> StoryRun:
        return StoryRun(
            id=row["id"],
            album_id=row["album_id"],
            status=RunStatus(row["status"]),
            created=row["created"],
            finished=row["finished"],
            photos=tuple(RunPhoto.from_dict(item) for item in json.loads(row["photos"])),
            parameters=json.loads(row["parameters"]),
            backend=row["backend"],
            model=json.loads(row["model"]),
            timings=json.loads(row["timings"]),
            raw_output=row["raw_output"],
            story=json.loads(row["story_json"]) if row["story_json"] else None,
            error=row["error"],
        )

    def _follow_relinks(self, runs: list[StoryRun]) -> list[StoryRun]:
        """Runs whose photo paths are where the library now finds each photo (after relinks)."""
        ids = {photo.photo_id for run in runs for photo in run.photos if photo.photo_id}
        if not ids:
            return runs
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, path FROM photos WHERE id IN ({','.join('?' * len(ids))})",
                tuple(ids),
            ).fetchall()
        current = {row["id"]: Path(row["path"]) for row in rows}
        return [
            replace(
                run,
                photos=tuple(
                    replace(photo, path=current.get(photo.photo_id, photo.path))
                    if photo.photo_id
                    else photo
                    for photo in run.photos
                ),
            )
            for run in runs
        ]

    def run(self, run_id: int) -> StoryRun:
        """One story run; its photo paths follow relinked photos."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(
                f"no story with id {run_id}: list an album's stories to see their ids"
            )
        return self._follow_relinks([self._run_from_row(row)])[0]

    def runs(self, ref: AlbumRef) -> list[StoryRun]:
        """The album's story runs, oldest first."""
        album = self.album(ref)
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE album_id = ? ORDER BY id", (album.id,)
            ).fetchall()
        return self._follow_relinks([self._run_from_row(row) for row in rows])

    def delete_run(self, run_id: int) -> None:
        """Forget a story run; one that this or another live process is writing is refused."""
        self.run(run_id)
        with self._write() as conn:
            # Decided inside the write transaction, as in recover_interrupted: the run's lock
            # file is held by whichever process writes it, this one included.
            row = conn.execute(
                "SELECT status, owner_token FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if (
                row is not None
                and row["status"] == RunStatus.RUNNING.value
                and self._writer_alive(row["owner_token"])
            ):
                raise LibraryError(f"story {run_id} is still being written: stop it first")
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def set_display_name(self, run_id: int, entity_id: str, name: str | None) -> None:
        """Show ``entity_id`` (e.g. ``char1``) as ``name`` in this story; None/"" restores it."""
        self.run(run_id)
        with self._write() as conn:
            if name is None or not name.strip():
                conn.execute(
                    "DELETE FROM run_names WHERE run_id = ? AND entity_id = ?", (run_id, entity_id)
                )
            else:
                conn.execute(
                    """INSERT INTO run_names (run_id, entity_id, display_name) VALUES (?, ?, ?)
                       ON CONFLICT (run_id, entity_id)
                       DO UPDATE SET display_name = excluded.display_name""",
                    (run_id, entity_id, name.strip()),
                )

    def add_finished_run(
        self,
        ref: AlbumRef,
        *,
        photos: Sequence[RunPhoto],
        status: RunStatus,
        raw_output: str,
        parameters: Mapping[str, Any],
        backend: str,
        model: Mapping[str, Any],
        timings: Mapping[str, Any],
        created: str | None = None,
        finished: str | None = None,
        error: str = "",
        display_names: Mapping[str, str] | None = None,
    ) -> int:
        """Store a run made elsewhere (an imported bundle); its story JSON is parsed anew."""
        if status is RunStatus.RUNNING:
            raise LibraryError("an imported story cannot be running: store it as interrupted")
        album = self.album(ref)
        story = storyjson.parse_story_json(raw_output, photos)
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO runs (album_id, status, created, finished, photos, parameters,
                                     backend, model, timings, raw_output, story_json, error)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    album.id,
                    status.value,
                    created or _now(),
                    finished or _now(),
                    _json([photo.to_dict() for photo in photos]),
                    _json(dict(parameters)),
                    backend,
                    _json(dict(model)),
                    _json(dict(timings)),
                    raw_output,
                    _json(story) if story is not None else None,
                    error,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO run_names (run_id, entity_id, display_name) VALUES (?, ?, ?)",
                [(run_id, key, value) for key, value in (display_names or {}).items() if value],
            )
        return run_id

    # -- export bundles --------------------------------------------------------------------

    def export_album(
        self, ref: AlbumRef, dest: str | os.PathLike[str], *, run_id: int | None = None
    ) -> Path:
        """Export the album with one story to a folder or ``.zip`` (see ``bundle``)."""
        from desktop_app.library import bundle

        return bundle.export_album(self, ref, dest, run_id=run_id)

    def import_bundle(
        self, source: str | os.PathLike[str], *, name: str | None = None
    ) -> bundle_module.ImportedBundle:
        """Create an album and its story from an export folder or zip (see ``bundle``)."""
        from desktop_app.library import bundle

        return bundle.import_bundle(self, source, name=name)

    def display_names(self, run_id: int) -> dict[str, str]:
        """The user's names for the story's entities, by entity id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT entity_id, display_name FROM run_names WHERE run_id = ? ORDER BY entity_id",
                (run_id,),
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    def recover_interrupted(self) -> list[int]:
        """Mark ``running`` runs whose writing process is gone as ``interrupted``.

        A run is live while its writer holds the run's lock file (see ``runlock``); runs this
        or another live process is writing are left alone. The partial output is kept and
        parsed. Returns the ids of the runs recovered.
        """
        recovered: list[int] = []
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, owner_token, owner_pid FROM runs WHERE status = 'running'"
            ).fetchall()
        for row in rows:
            token = row["owner_token"]
            with self._write() as conn:
                # Decide inside the write transaction: a writer marks its run finished before it
                # lets its lock go, so "still running and unlocked" means the writer died.
                current = conn.execute(
                    "SELECT status FROM runs WHERE id = ?", (row["id"],)
                ).fetchone()
                if current is None or current["status"] != RunStatus.RUNNING.value:
                    continue
                if self._writer_alive(token):
                    continue
                run = self._run_from_row(
                    conn.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
                )
                story = storyjson.parse_story_json(run.raw_output, run.photos)
                who = f"process {row['owner_pid']}" if row["owner_pid"] else "the app"
                conn.execute(
                    """UPDATE runs SET status = 'interrupted', finished = ?, story_json = ?,
                              error = ?, owner_token = NULL WHERE id = ?""",
                    (
                        _now(),
                        _json(story) if story is not None else None,
                        f"{who} ended while writing this story; its partial output is kept "
                        "(tell the story again for a complete one)",
                        row["id"],
                    ),
                )
            if token:
                with contextlib.suppress(OSError):
                    os.unlink(self._lock_file(token))
            recovered.append(row["id"])
            logger.info("story run %s was interrupted; marked as such", row["id"])
        return recovered
