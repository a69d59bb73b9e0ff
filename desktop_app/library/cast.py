"""The album's cast: names that outlive the version they were given in (schema migration 3)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from desktop_app.library.albums import AlbumRef, AlbumStore
from desktop_app.library.database import now, to_json
from desktop_app.library.records import CastMatch, CastMember

Boxes = Mapping[str, tuple[float, float, float, float]]


class CastStore(AlbumStore):
    """Cast members of an album and the matches that applied their names to later versions."""

    @staticmethod
    def _member(row: sqlite3.Row) -> CastMember:
        boxes = {key: tuple(value) for key, value in json.loads(row["boxes"] or "{}").items()}
        return CastMember(
            id=row["id"],
            album_id=row["album_id"],
            name=row["name"],
            kind=row["kind"],
            boxes=boxes,  # type: ignore[arg-type]
            run_id=row["run_id"],
            entity_id=row["entity_id"],
            created=row["created"],
        )

    def cast(self, ref: AlbumRef) -> list[CastMember]:
        """The album's cast members, oldest first."""
        album = self.album(ref)
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM album_cast WHERE album_id = ? ORDER BY id", (album.id,)
            ).fetchall()
        return [self._member(row) for row in rows]

    def save_cast_member(
        self,
        ref: AlbumRef,
        *,
        name: str,
        kind: str,
        boxes: Boxes,
        run_id: int | None,
        entity_id: str | None,
    ) -> int:
        """Add a member, or rename and re-place the one named at ``run_id``/``entity_id``."""
        album = self.album(ref)
        with self._write() as conn:
            row = None
            if run_id is not None and entity_id is not None:
                row = conn.execute(
                    "SELECT id FROM album_cast WHERE run_id = ? AND entity_id = ?",
                    (run_id, entity_id),
                ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE album_cast SET name = ?, kind = ?, boxes = ? WHERE id = ?",
                    (name, kind, to_json(dict(boxes)), row["id"]),
                )
                return int(row["id"])
            cursor = conn.execute(
                """INSERT INTO album_cast (album_id, name, kind, boxes, run_id, entity_id, created)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (album.id, name, kind, to_json(dict(boxes)), run_id, entity_id, now()),
            )
            return int(cursor.lastrowid or 0)

    def delete_cast_member(self, cast_id: int) -> None:
        """Forget a member (its matches go with it; the names it gave stay until undone)."""
        with self._write() as conn:
            conn.execute("DELETE FROM album_cast WHERE id = ?", (cast_id,))

    def cast_matches(self, run_id: int) -> list[CastMatch]:
        """Every match recorded for a version, undone ones included."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM cast_matches WHERE run_id = ? ORDER BY entity_id", (run_id,)
            ).fetchall()
        return [
            CastMatch(r["run_id"], r["entity_id"], r["cast_id"], r["mean_iou"], bool(r["undone"]))
            for r in rows
        ]

    def apply_cast_match(
        self, run_id: int, entity_id: str, cast_id: int, mean_iou: float, name: str
    ) -> None:
        """Record the match and show ``entity_id`` under the member's ``name`` in that version."""
        with self._write() as conn:
            conn.execute(
                """INSERT INTO cast_matches (run_id, entity_id, cast_id, mean_iou, undone)
                   VALUES (?, ?, ?, ?, 0)
                   ON CONFLICT (run_id, entity_id, cast_id)
                   DO UPDATE SET mean_iou = excluded.mean_iou""",
                (run_id, entity_id, cast_id, mean_iou),
            )
            conn.execute(
                """INSERT INTO run_names (run_id, entity_id, display_name) VALUES (?, ?, ?)
                   ON CONFLICT (run_id, entity_id)
                   DO UPDATE SET display_name = excluded.display_name""",
                (run_id, entity_id, name),
            )

    def undo_cast_match(self, run_id: int, entity_id: str) -> bool:
        """Take back the name a match gave ``entity_id``; it is not offered there again.
        False when no live match gave it a name."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE cast_matches SET undone = 1 WHERE run_id = ? AND entity_id = ? "
                "AND undone = 0",
                (run_id, entity_id),
            )
            if not cursor.rowcount:
                return False
            conn.execute(
                "DELETE FROM run_names WHERE run_id = ? AND entity_id = ?", (run_id, entity_id)
            )
            return True
