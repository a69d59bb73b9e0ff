"""The library's SQLite schema and its forward migrations.

``PRAGMA user_version`` holds the number of migrations applied. A migration is a tuple of SQL
statements applied in one transaction; migrations are only ever appended, never edited, so a
database written by any earlier version upgrades step by step.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from desktop_app.library.errors import LibraryVersionError

# Migration 1: the first schema (albums, photos, ordered membership, story runs).
_V1 = (
    """CREATE TABLE albums (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        notes TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL
    )""",
    """CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        captured_at TEXT,
        added TEXT NOT NULL
    )""",
    "CREATE INDEX photos_by_path ON photos(path)",
    """CREATE TABLE album_photos (
        album_id INTEGER NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (album_id, photo_id)
    )""",
    "CREATE INDEX album_photos_in_order ON album_photos(album_id, position)",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        album_id INTEGER NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
        status TEXT NOT NULL
            CHECK (status IN ('running', 'complete', 'stopped', 'failed', 'interrupted')),
        created TEXT NOT NULL,
        finished TEXT,
        photos TEXT NOT NULL,
        parameters TEXT NOT NULL DEFAULT '{}',
        backend TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '{}',
        timings TEXT NOT NULL DEFAULT '{}',
        raw_output TEXT NOT NULL DEFAULT '',
        story_json TEXT,
        error TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX runs_by_album ON runs(album_id, id)",
)

# Migration 2: the user's edits as a layer over a run (display names by entity id), and the
# owner of a running run so that a run whose process died can be told from a live one.
_V2 = (
    """CREATE TABLE run_names (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        entity_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        PRIMARY KEY (run_id, entity_id)
    )""",
    "ALTER TABLE runs ADD COLUMN owner_token TEXT",
    "ALTER TABLE runs ADD COLUMN owner_pid INTEGER",
)

# Migration 3: the album's cast, so that a name outlives the version it was given in. A member is
# a name the user gave an entity of one version, with the entity's boxes on the original photos
# (fractions of the upright photo, by photo hash): later versions are matched against those
# boxes (desktop_app/app/name_matching.py). A match applies the name to an entity of a later
# version; undoing it keeps the row (undone = 1) so that the name is not offered there again.
_V3 = (
    """CREATE TABLE album_cast (
        id INTEGER PRIMARY KEY,
        album_id INTEGER NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('character', 'object', 'place')),
        boxes TEXT NOT NULL DEFAULT '{}',
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        entity_id TEXT,
        created TEXT NOT NULL
    )""",
    "CREATE INDEX album_cast_by_album ON album_cast(album_id)",
    "CREATE UNIQUE INDEX album_cast_by_entity ON album_cast(run_id, entity_id)",
    """CREATE TABLE cast_matches (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        entity_id TEXT NOT NULL,
        cast_id INTEGER NOT NULL REFERENCES album_cast(id) ON DELETE CASCADE,
        mean_iou REAL NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, entity_id, cast_id)
    )""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, db_path: Path, *, target: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks, up to ``target``; return the version reached.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Each step runs in its own
    ``BEGIN IMMEDIATE`` transaction and re-reads the version inside it, so two processes opening
    the same new library at once do not both apply a step.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise LibraryVersionError(
            f"{db_path} was written by a newer Storyteller (library schema {found}; this version "
            f"reads up to {SCHEMA_VERSION}): update Storyteller, or choose another library folder"
        )
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version >= target:
                conn.execute("COMMIT")
                return version
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
