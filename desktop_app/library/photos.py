"""Photos: importing files into albums, their order, and finding moved ones again."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path

from desktop_app.fileio import sha256_file
from desktop_app.library import thumbnails
from desktop_app.library.albums import AlbumRef, AlbumStore
from desktop_app.library.database import now
from desktop_app.library.errors import LibraryError, NotAnImageError, PhotoUnreadableError
from desktop_app.library.photofiles import (
    PhotoFacts,
    expand_paths,
    read_photo_facts,
    walk_files,
)
from desktop_app.library.records import (
    DuplicatePhoto,
    FailedFile,
    ImportReport,
    Photo,
    RelinkedPhoto,
    RelinkReport,
)

ImportProgress = Callable[[int, Path], None]  # (files looked at so far, current file)


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


_FACT_COLUMNS = ("size", "mtime", "sha256", "width", "height", "captured_at")


def _facts_from_row(row: sqlite3.Row) -> PhotoFacts:
    """What a ``photos`` row records about its file."""
    return PhotoFacts(Path(row["path"]), **{column: row[column] for column in _FACT_COLUMNS})


def _photo(photo_id: int, facts: PhotoFacts, *, missing: bool = False) -> Photo:
    """The photo record of ``facts`` stored as ``photo_id``."""
    recorded = {item.name: getattr(facts, item.name) for item in fields(facts)}
    return Photo(id=photo_id, missing=missing, **recorded)


class PhotoStore(AlbumStore):
    """The photos the library knows and each album's ordered membership."""

    thumbnails_dir: Path

    @staticmethod
    def _photo_from_row(row: sqlite3.Row) -> Photo:
        facts = _facts_from_row(row)
        return _photo(row["id"], facts, missing=not facts.path.is_file())

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
        return _facts_from_row(row)

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
        added_at = now()
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
                    # What was just written; no need to read it back.
                    photo = _photo(int(cursor.lastrowid or 0), fact)
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
