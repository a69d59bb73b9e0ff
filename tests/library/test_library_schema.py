"""The database file: WAL, foreign keys, schema version and forward migrations."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.library import Library, LibraryError, LibraryVersionError, RunSpec, RunStatus
from desktop_app.library.schema import SCHEMA_VERSION


def test_a_new_library_lives_in_the_data_folder_in_wal_mode(storyteller_home: Path) -> None:
    with Library.open() as library:
        assert library.path == paths.data_dir() / "library.sqlite3"
        assert library.path.is_relative_to(storyteller_home)
        assert library.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(library.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_folder_such_as_the_library_dir_setting_holds_the_database(tmp_path: Path) -> None:
    with Library.open(tmp_path / "my library") as library:
        assert library.path == tmp_path / "my library" / "library.sqlite3"
        assert library.root == tmp_path / "my library"


def test_foreign_keys_cascade_album_deletion_to_its_runs(library: Library) -> None:
    album = library.create_album("A")
    run_id = library.start_run(album, RunSpec(photo_ids=()))
    library.fail_run(run_id, "test")
    library.delete_album("A")
    conn = sqlite3.connect(library.path)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    conn.close()


def test_a_database_at_the_first_schema_migrates_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    first = Library.open(db, migrate_to=1)
    assert first.schema_version == 1
    # Fill it with plain SQL as a version-1 Storyteller would have: no owner columns, no edits.
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO albums (id, name, notes, created) VALUES (1, 'Old', 'kept', '2024-01-01')"
    )
    conn.execute(
        "INSERT INTO photos (id, path, sha256, size, mtime, width, height, captured_at, added) "
        "VALUES (1, '/photos/a.jpg', 'ab12', 10, 1.0, 4, 3, NULL, '2024-01-01')"
    )
    conn.execute("INSERT INTO album_photos (album_id, photo_id, position) VALUES (1, 1, 1)")
    photos = json.dumps([{"index": 1, "photo_id": 1, "path": "/photos/a.jpg", "sha256": "ab12"}])
    conn.execute(
        "INSERT INTO runs (id, album_id, status, created, photos, raw_output) "
        "VALUES (7, 1, 'running', '2024-01-01', ?, '')",
        (photos,),
    )
    conn.commit()
    conn.close()
    first.close()

    with Library.open(db) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION
        assert upgraded.album("Old").notes == "kept"
        assert [p.path for p in upgraded.photos("Old")] == [Path("/photos/a.jpg")]
        # A run left running by the old version has no owner: it is recoverable.
        assert upgraded.recover_interrupted() == [7]
        assert upgraded.run(7).status is RunStatus.INTERRUPTED
        upgraded.set_display_name(7, "char1", "Grandma")  # the edits layer arrived in v2
        assert upgraded.display_names(7) == {"char1": "Grandma"}


def test_a_library_from_a_newer_version_is_refused_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(LibraryVersionError, match=r"newer Storyteller.*update Storyteller"):
        Library.open(db)


def test_a_file_that_is_not_a_library_is_refused_with_advice(tmp_path: Path) -> None:
    db = tmp_path / "notes.sqlite3"
    db.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(LibraryVersionError, match="not a Storyteller library"):
        Library.open(db)


def test_a_library_busy_writing_elsewhere_still_reads_and_reports_a_stuck_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import desktop_app.library.store as store

    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 0.2)
    library = Library.open(tmp_path / "lib")
    library.create_album("A")
    other = sqlite3.connect(library.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        assert [a.name for a in library.albums()] == ["A"]  # WAL: readers are not blocked
        with pytest.raises(LibraryError, match="stayed busy"):
            library.create_album("B")
    finally:
        other.execute("ROLLBACK")
        other.close()
    library.create_album("B")
    assert [a.name for a in library.albums()] == ["A", "B"]
    library.close()


def test_a_library_at_schema_2_gains_the_albums_cast(tmp_path: Path) -> None:
    db = tmp_path / "v2.sqlite3"
    with Library.open(db, migrate_to=2) as second:
        second.create_album("Old")
        run_id = second.start_run("Old", RunSpec(photo_ids=()))
        second.fail_run(run_id, "test")
        second.set_display_name(run_id, "char1", "Grandma")
    with Library.open(db) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION == 3
        assert upgraded.display_names(run_id) == {"char1": "Grandma"}
        assert upgraded.cast("Old") == []  # adopted from the names when next read (app/)
        member = upgraded.save_cast_member(
            "Old",
            name="Grandma",
            kind="character",
            boxes={"ab": (0, 0, 1, 1)},
            run_id=run_id,
            entity_id="char1",
        )
        upgraded.delete_run(run_id)  # the member outlives the version it was named in
        (kept,) = upgraded.cast("Old")
        assert (kept.id, kept.run_id, kept.boxes) == (member, None, {"ab": (0, 0, 1, 1)})
