"""A write that fails half-way is rolled back and said in words; the library stays usable
(issue 27's untested failure path: without the ROLLBACK the connection stays inside the failed
transaction and every later write fails until the app restarts)."""

from __future__ import annotations

import sqlite3

import pytest

from desktop_app.library import Library, LibraryError


def test_a_failed_write_is_rolled_back_and_the_next_write_works(library: Library) -> None:
    library.create_album("Kept")
    failing = pytest.raises(LibraryError, match="cannot be written")
    with failing as raised, library._write() as conn:
        conn.execute("INSERT INTO albums (name, created) VALUES ('Half-way', 'now')")
        conn.execute("INSERT INTO no_such_table VALUES (1)")  # fails as a full disk would
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    assert "check free disk space" in str(raised.value)
    assert not library._conn.in_transaction
    assert [album.name for album in library.albums()] == ["Kept"]  # the half-way row is gone
    library.create_album("After")  # the next write works, no restart needed
    assert sorted(album.name for album in library.albums()) == ["After", "Kept"]


def test_any_other_error_inside_a_write_is_rolled_back_and_raised_as_it_is(
    library: Library,
) -> None:
    with pytest.raises(KeyError), library._write() as conn:
        conn.execute("INSERT INTO albums (name, created) VALUES ('Half-way', 'now')")
        raise KeyError("a bug in the caller")
    assert not library._conn.in_transaction
    assert library.albums() == []
