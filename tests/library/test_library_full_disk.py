"""The library on a real full disk (a small tmpfs): said as a full disk, never as damage, and a
story that ends while the disk is full is not lost (issue 27).

The story is told with the disk filled after its first token; it finishes; its text goes to a
file in the user data folder; after room is made, the next start's recovery brings it back into
the library as an interrupted version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from library_helpers import STORY_TEXT, distinct_photos

from desktop_app import paths
from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.engine.api import Event, TokenEvent
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import (
    Library,
    LibraryDiskFullError,
    LibraryVersionError,
    RunNotStoredError,
    RunSpec,
    RunStatus,
)


@pytest.fixture
def full_library(small_disk: Any, tmp_path: Path) -> Iterator[Library]:
    """A library with an album of two photos on the small disk (the photos are elsewhere)."""
    library = Library.open(small_disk.path / "library")
    library.create_album("Rain")
    library.add_photos("Rain", distinct_photos(tmp_path / "photos", 2))
    yield library
    library.close()


def test_a_write_on_a_full_disk_says_disk_full_and_nothing_was_lost(
    full_library: Library, small_disk: Any
) -> None:
    small_disk.fill()
    with pytest.raises(LibraryDiskFullError) as raised:
        full_library.create_album("Snow")
    message = str(raised.value)
    assert f"the disk of {small_disk.path / 'library'} is full" in message
    assert "is free" in message and "nothing was lost" in message
    assert "damaged" not in message
    small_disk.make_room()
    full_library.create_album("Snow")  # no restart needed
    assert [album.name for album in full_library.albums()] == ["Rain", "Snow"]


def test_opening_a_library_on_a_full_disk_never_calls_it_damaged(small_disk: Any) -> None:
    Library.open(small_disk.path / "existing").close()
    small_disk.fill()
    for folder in ("existing", "new"):
        # Before issue 27: "... is not a Storyteller library or is damaged (disk I/O error)".
        with pytest.raises(LibraryDiskFullError) as raised:
            Library.open(small_disk.path / folder)
        assert not isinstance(raised.value, LibraryVersionError)
        assert f"the disk of {small_disk.path / folder} is full" in str(raised.value)
        assert "damaged" not in str(raised.value)
    small_disk.make_room()
    Library.open(small_disk.path / "existing").close()  # the same library opens with room


def test_a_story_that_ends_on_a_full_disk_comes_back_at_the_next_start(
    full_library: Library, small_disk: Any
) -> None:
    full_library.flush_interval_s = 0.0  # every token tries the disk
    tokens = 0

    def fill_after_the_first_token(event: Event) -> None:
        nonlocal tokens
        if isinstance(event, TokenEvent):
            tokens += 1
            if tokens == 1:
                small_disk.fill()

    with pytest.raises(RunNotStoredError) as raised:
        tell_album(
            full_library,
            "Rain",
            ReplayBackend(STORY_TEXT),
            TellOptions(),
            on_event=fill_after_the_first_token,
        )
    assert tokens > 10  # the story went on to its end while the disk was full
    error = raised.value
    assert error.raw_output == STORY_TEXT
    unsaved = paths.unsaved_stories_dirs()[0]
    assert error.saved_to is not None and error.saved_to.parent == unsaved
    assert "is full" in str(error) and str(error.saved_to) in str(error)
    assert "next start" in str(error)
    db = full_library.path
    full_library.close()

    small_disk.make_room()
    reopened = Library.open(db)
    try:
        (run_id,) = reopened.recover_interrupted()
        run = reopened.run(run_id)
        assert run.status is RunStatus.INTERRUPTED
        assert (
            run.raw_output == STORY_TEXT
        )  # all of it, not the part written before the disk filled
        assert run.story is not None
        assert "disk was full" in run.error
        assert not error.saved_to.exists()  # imported once, then gone
    finally:
        reopened.close()


def test_recovery_waits_while_the_disk_is_still_full(
    full_library: Library, small_disk: Any
) -> None:
    run_id = full_library.start_run("Rain", _spec(full_library))
    full_library.append_output(run_id, "<gdi image1>")
    full_library.flush_output(run_id)
    full_library._run_locks.pop(run_id).release()  # as if its process had died
    small_disk.fill()
    assert full_library.recover_interrupted() == []  # no error: the next start tries again
    small_disk.make_room()
    assert full_library.recover_interrupted() == [run_id]
    assert full_library.run(run_id).status is RunStatus.INTERRUPTED


def _spec(library: Library) -> RunSpec:
    return RunSpec(
        photo_ids=tuple(photo.id for photo in library.photos("Rain")),
        parameters={},
        backend="test",
        model={},
    )


def test_a_thumbnail_on_a_full_disk_says_so_and_leaves_no_part_file(
    full_library: Library, small_disk: Any
) -> None:
    from desktop_app.library.thumbnails import thumbnail_path

    folder = small_disk.path / "thumbnails"
    small_disk.fill()
    photo = full_library.photos("Rain")[0]
    with pytest.raises(LibraryDiskFullError) as raised:
        thumbnail_path(folder, photo, 128)
    message = str(raised.value)
    assert f"the thumbnail of {photo.name} cannot be written: the disk of" in message
    assert "it needs about" in message and "the photo itself is untouched" in message
    assert [p for p in folder.rglob("*") if p.is_file()] == []
    small_disk.make_room()
    assert thumbnail_path(folder, photo, 128).is_file()
