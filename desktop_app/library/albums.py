"""Albums: named, ordered sets of photos with their stories."""

from __future__ import annotations

import sqlite3
from typing import Union

from desktop_app.library.database import Database, now
from desktop_app.library.errors import AlbumExistsError, AlbumNotFoundError, LibraryError
from desktop_app.library.records import Album

AlbumRef = Union[Album, int, str]  # noqa: UP007 (a runtime alias on 3.10)


class AlbumStore(Database):
    """Creating, finding, renaming and deleting albums."""

    _ALBUM_SELECT = """
        SELECT a.id, a.name, a.notes, a.created,
               (SELECT COUNT(*) FROM album_photos m WHERE m.album_id = a.id) AS photo_count,
               (SELECT COUNT(*) FROM runs r WHERE r.album_id = a.id) AS run_count
        FROM albums a
    """

    @staticmethod
    def _album_from_row(row: sqlite3.Row) -> Album:
        # The select names its columns after the record's fields.
        return Album(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (sqlite3.Row)

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
                    (cleaned, notes, now()),
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
