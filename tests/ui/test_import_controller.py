"""Importing photos and finding moved ones in the background: what is reported, stopping an
import, closing the window during one, and importing with no album open."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt
from ui_helpers import album_with_photos, close_error_dialogs, drop_urls


def test_files_that_are_not_photos_are_reported_by_name(
    qtbot: Any, make_window: Callable[..., Any], tmp_path: Path
) -> None:
    from desktop_app.ui import errors as ui_errors

    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    window = make_window()
    window.sidebar.new_album("Mixed", edit=False)
    drop_urls(window.filmstrip.view.viewport(), [notes])
    qtbot.waitUntil(lambda: bool(ui_errors.open_error_dialogs()), timeout=10_000)
    (message,) = close_error_dialogs()
    assert "notes.txt" in message
    assert window.photo_model.rowCount() == 0


def album_whose_photo_moved(
    qtbot: Any, window: Any, tmp_path: Path, photo: Path, *, also_in_new_folder: str = ""
) -> tuple[Any, Path, Path]:
    """An album holding a copy of ``photo`` that was then moved to another folder, where a
    same-content file named ``also_in_new_folder`` (when given) lies too.
    Returns the album, the new folder and the photo's new path."""
    here = tmp_path / "here"
    here.mkdir()
    copy = here / photo.name
    copy.write_bytes(photo.read_bytes())
    album = album_with_photos(qtbot, window, [copy])
    moved = tmp_path / "moved"
    moved.mkdir()
    if also_in_new_folder:
        (moved / also_in_new_folder).write_bytes(copy.read_bytes())
    copy.rename(moved / copy.name)
    window.sidebar.reload_albums(select_id=album.id)
    return album, moved, moved / copy.name


def relink_and_wait(qtbot: Any, window: Any, folder: Path) -> None:
    handle = window.imports.relink(folder)
    assert handle is not None
    with qtbot.waitSignal(handle.ended, timeout=10_000):
        pass


def test_relinking_finds_a_moved_photo_and_clears_the_badge(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
) -> None:
    window = make_window()
    album, moved, new_path = album_whose_photo_moved(qtbot, window, tmp_path, sample_photos[0])
    assert "missing" in window.sidebar.album_view.currentIndex().data()
    relink_and_wait(qtbot, window, moved)
    qtbot.waitUntil(lambda: "missing" not in window.sidebar.album_view.currentIndex().data())
    assert library.photos(album.id)[0].path == new_path


def test_relinking_reports_files_it_could_not_read_in_the_status_bar(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.fileio import sha256_file
    from desktop_app.library import photos as photo_store

    window = make_window()
    # A same-size file the search must hash, which the OS refuses to read (searched first).
    locked_name = "0-locked.jpg"
    album, moved, new_path = album_whose_photo_moved(
        qtbot, window, tmp_path, sample_photos[0], also_in_new_folder=locked_name
    )

    def refusing_sha256(path: Path) -> str:
        if Path(path).name == locked_name:
            raise PermissionError(13, "Permission denied", str(path))
        return sha256_file(path)

    monkeypatch.setattr(photo_store, "sha256_file", refusing_sha256)
    relink_and_wait(qtbot, window, moved)
    qtbot.waitUntil(lambda: "could not be read" in window.statusBar().currentMessage())
    assert "Found 1 photo(s); 0 still missing; 1 file(s)" in window.statusBar().currentMessage()
    assert library.photos(album.id)[0].path == new_path


SLOW_IMPORT_FILES = 40


SLOW_IMPORT_S_PER_FILE = 0.1  # 4 s for the whole folder if nothing stops it


@pytest.fixture
def slow_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Path]]:
    """A folder of distinct photos that takes ``SLOW_IMPORT_S_PER_FILE`` per file to read (a
    big folder on a slow disk); returns it and the list of files read so far."""
    from PIL import Image

    from desktop_app.library import photos as photo_store

    folder = tmp_path / "big folder"
    folder.mkdir()
    for index in range(SLOW_IMPORT_FILES):
        Image.new("RGB", (8, 8), (index * 6, 100, 200)).save(folder / f"img{index:02d}.png")
    read: list[Path] = []
    real_read = photo_store.read_photo_facts

    def slow_read(path: Path) -> Any:
        read.append(path)
        time.sleep(SLOW_IMPORT_S_PER_FILE)
        return real_read(path)

    monkeypatch.setattr(photo_store, "read_photo_facts", slow_read)
    return folder, read


def test_closing_the_window_during_a_big_import_returns_promptly(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    slow_import: tuple[Path, list[Path]],
) -> None:
    folder, read = slow_import
    window = make_window()
    album = window.sidebar.new_album("Big", edit=False)
    window.imports.import_paths([folder])
    assert window.imports.is_importing()
    qtbot.waitUntil(lambda: len(read) >= 1, timeout=5_000)
    started = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"closing waited {elapsed:.1f} s for the import"
    assert not window.workers.running()
    kept = len(library.photos(album.id))
    assert 1 <= kept < SLOW_IMPORT_FILES  # what was read is kept; the rest was never opened
    assert len(read) < SLOW_IMPORT_FILES


def test_stop_importing_keeps_the_photos_added_so_far(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    slow_import: tuple[Path, list[Path]],
) -> None:
    folder, read = slow_import
    window = make_window()
    album = window.sidebar.new_album("Big", edit=False)
    assert window.filmstrip.cancel_import_button.isHidden()
    drop_urls(window.filmstrip.view.viewport(), [folder])
    qtbot.waitUntil(lambda: len(read) >= 2, timeout=5_000)
    assert (
        window.filmstrip.cancel_import_button.isVisible()
        and window.filmstrip.cancel_import_button.isEnabled()
    )
    qtbot.mouseClick(window.filmstrip.cancel_import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.imports.is_importing(), timeout=2_000)
    qtbot.waitUntil(lambda: window.filmstrip.cancel_import_button.isHidden(), timeout=2_000)
    kept = library.photos(album.id)
    assert 2 <= len(kept) < SLOW_IMPORT_FILES
    assert window.photo_model.rowCount() == len(kept)
    assert (
        window.statusBar()
        .currentMessage()
        .startswith(f"Import stopped. Added {len(kept)} photo(s)")
    )


def test_photos_dropped_with_no_album_selected_go_into_a_new_album(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    library.create_album("New album")  # the default name is taken: the app picks another
    window.sidebar.reload_albums()
    window.sidebar.album_view.setCurrentIndex(QModelIndex())
    window.show_album(None)
    drop_urls(window.filmstrip.view.viewport(), sample_photos[:2])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == 2, timeout=10_000)
    assert sorted(a.name for a in library.albums()) == ["New album", "New album 2"]
