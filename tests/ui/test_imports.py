"""The import controller alone with a session: importing photos and finding moved ones in the
background, what is reported, stopping an import, closing during one, and importing with no album
open."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import close_error_dialogs, session_album

from desktop_app.ui.imports import ImportController


def _imports(session: Any) -> tuple[ImportController, list[str]]:
    """The controller over ``session`` and the status lines it shows."""
    statuses: list[str] = []
    session.status_message.connect(statuses.append)
    return ImportController(session), statuses


def import_and_wait(qtbot: Any, imports: ImportController, paths: list[Path]) -> None:
    imports.import_paths(paths)
    qtbot.waitUntil(lambda: not imports.has_imports(), timeout=10_000)


def test_files_that_are_not_photos_are_reported_by_name(
    qtbot: Any, session: Any, tmp_path: Path, sample_photos: list[Path]
) -> None:
    from desktop_app.ui import error_dialog as ui_errors

    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    imports, statuses = _imports(session)
    album = session.create_album("Mixed")
    import_and_wait(qtbot, imports, [notes, sample_photos[0]])
    qtbot.waitUntil(lambda: bool(ui_errors.open_error_dialogs()), timeout=10_000)
    (message,) = close_error_dialogs()
    assert "notes.txt" in message
    assert "1 file could not be added" in message  # plurals as people write them
    assert session.photo_model.rowCount() == 1  # the photo beside it was added
    assert [p.path.name for p in session.library.photos(album.id)] == [sample_photos[0].name]
    assert statuses[-1].startswith("Added 1 photo;")


def album_whose_photo_moved(
    session: Any, tmp_path: Path, photo: Path, *, also_in_new_folder: str = ""
) -> tuple[Any, Path, Path]:
    """An album holding a copy of ``photo`` that was then moved to another folder, where a
    same-content file named ``also_in_new_folder`` (when given) lies too.
    Returns the album, the new folder and the photo's new path."""
    here = tmp_path / "here"
    here.mkdir()
    copy = here / photo.name
    copy.write_bytes(photo.read_bytes())
    album = session_album(session, [copy])
    moved = tmp_path / "moved"
    moved.mkdir()
    if also_in_new_folder:
        (moved / also_in_new_folder).write_bytes(copy.read_bytes())
    copy.rename(moved / copy.name)
    session.reload_photos()
    return album, moved, moved / copy.name


def relink_and_wait(qtbot: Any, imports: ImportController, folder: Path) -> None:
    handle = imports.relink(folder)
    assert handle is not None
    with qtbot.waitSignal(handle.ended, timeout=10_000):
        pass


def test_relinking_finds_a_moved_photo_and_the_album_and_strip_follow(
    qtbot: Any, session: Any, library: Any, tmp_path: Path, sample_photos: list[Path]
) -> None:
    imports, statuses = _imports(session)
    album, moved, new_path = album_whose_photo_moved(session, tmp_path, sample_photos[0])
    assert "missing" in session.photo_model.index(0).data()
    changed: list[int] = []
    session.album_changed.connect(changed.append)
    relink_and_wait(qtbot, imports, moved)
    assert set(changed) == {album.id}  # the album list re-reads its missing count
    assert "missing" not in session.photo_model.index(0).data()
    assert library.photos(album.id)[0].path == new_path
    assert library.missing_photos(album.id) == []
    assert statuses[-1] == "Found 1 photo; 0 still missing."


def test_relinking_reports_files_it_could_not_read_in_the_status_bar(
    qtbot: Any,
    session: Any,
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.fileio import sha256_file
    from desktop_app.library import photos as photo_store

    imports, statuses = _imports(session)
    # A same-size file the search must hash, which the OS refuses to read (searched first).
    locked_name = "0-locked.jpg"
    album, moved, new_path = album_whose_photo_moved(
        session, tmp_path, sample_photos[0], also_in_new_folder=locked_name
    )

    def refusing_sha256(path: Path) -> str:
        if Path(path).name == locked_name:
            raise PermissionError(13, "Permission denied", str(path))
        return sha256_file(path)

    monkeypatch.setattr(photo_store, "sha256_file", refusing_sha256)
    relink_and_wait(qtbot, imports, moved)
    qtbot.waitUntil(lambda: bool(statuses) and "could not be read" in statuses[-1])
    assert "Found 1 photo; 0 still missing; 1 file in the folder" in statuses[-1]
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


def test_closing_the_session_during_a_big_import_returns_promptly(
    qtbot: Any, session: Any, library: Any, slow_import: tuple[Path, list[Path]]
) -> None:
    folder, read = slow_import
    imports, _statuses = _imports(session)
    album = session.create_album("Big")
    imports.import_paths([folder])
    assert imports.is_importing()
    qtbot.waitUntil(lambda: len(read) >= 1, timeout=5_000)
    started = time.perf_counter()
    session.close()  # what the window's close does
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"closing waited {elapsed:.1f} s for the import"
    assert not session.workers.running()
    kept = len(library.photos(album.id))
    assert 1 <= kept < SLOW_IMPORT_FILES  # what was read is kept; the rest was never opened
    assert len(read) < SLOW_IMPORT_FILES


def test_stop_importing_keeps_the_photos_added_so_far(
    qtbot: Any, session: Any, library: Any, slow_import: tuple[Path, list[Path]]
) -> None:
    folder, read = slow_import
    imports, statuses = _imports(session)
    states: list[bool] = []
    imports.state_changed.connect(lambda: states.append(imports.has_imports()))
    album = session.create_album("Big")
    imports.import_paths([folder])
    assert states == [True]  # "Stop importing" is offered
    qtbot.waitUntil(lambda: len(read) >= 2, timeout=5_000)
    imports.cancel_imports()
    assert statuses[-1] == "Stopping the import…"
    qtbot.waitUntil(lambda: not imports.is_importing(), timeout=2_000)
    qtbot.waitUntil(lambda: states[-1] is False, timeout=2_000)
    kept = library.photos(album.id)
    assert 2 <= len(kept) < SLOW_IMPORT_FILES
    assert session.photo_model.rowCount() == len(kept)
    assert statuses[-1].startswith(f"Import stopped. Added {len(kept)} photos")


def test_photos_dropped_with_no_album_open_go_into_a_new_album(
    qtbot: Any, session: Any, library: Any, sample_photos: list[Path]
) -> None:
    imports, _statuses = _imports(session)
    session.create_album("New album")  # the default name is taken: the app picks another
    session.open_album(None)
    import_and_wait(qtbot, imports, sample_photos[:2])
    assert session.photo_model.rowCount() == 2
    assert sorted(a.name for a in library.albums()) == ["New album", "New album 2"]
    assert session.album.name == "New album 2"


def test_a_400_megapixel_photo_gets_the_same_refusal_as_on_the_command_line(
    qtbot: Any, session: Any, tmp_path: Path
) -> None:
    from made_photos import huge_png

    from desktop_app.ui import error_dialog as ui_errors

    imports, _statuses = _imports(session)
    session.create_album("Huge")
    import_and_wait(qtbot, imports, [huge_png(tmp_path / "huge.png")])
    qtbot.waitUntil(lambda: bool(ui_errors.open_error_dialogs()), timeout=10_000)
    (message,) = close_error_dialogs()
    assert "huge.png is too large to open safely: resize it below 90 megapixels" in message
    assert "Traceback" not in message and session.photo_model.rowCount() == 0
