"""The versions controller alone with a session: switching, deleting and comparing versions,
renaming a character in one, exporting or copying the open one, and following runs as they
start and end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog
from ui_helpers import session_album, tell_and_wait

from desktop_app.ui.generation import GenerationController
from desktop_app.ui.session import OpenVersion
from desktop_app.ui.versions import VersionsController


@pytest.fixture
def versions(told_session: Any) -> VersionsController:
    """The versions controller over a session showing the sample album's finished story."""
    controller = VersionsController(told_session)
    controller.reload_runs(select_latest=True)
    assert isinstance(told_session.shown, OpenVersion)
    return controller


def test_renaming_a_character_is_stored_as_an_edit_and_told_to_the_views(
    versions: VersionsController, told_session: Any, library: Any, story_output: str
) -> None:
    session = told_session
    run = session.open_run
    renamed: list[Any] = []
    statuses: list[str] = []
    session.names_changed.connect(renamed.append)
    session.status_message.connect(statuses.append)
    versions.rename_entity("char1", "Mia")
    assert statuses[-1] == "Maya is now called “Mia” in this version."  # names, not "char1"
    assert library.display_names(run.id) == {"char1": "Mia"}
    assert library.run(run.id).raw_output == story_output  # the model's output is untouched
    assert renamed == [{"char1": "Mia"}]
    assert session.shown.stored.names == {"char1": "Mia"}
    versions.rename_entity("char1", "")
    assert library.display_names(run.id) == {} and renamed[-1] == {}
    assert statuses[-1] == "Mia has its original name again: “Maya”."


@pytest.mark.parametrize("kind", ["html", "markdown", "json", "pdf"])
def test_export_writes_the_story_with_the_users_names(
    qtbot: Any, versions: VersionsController, told_session: Any, tmp_path: Path, kind: str
) -> None:
    run = told_session.open_run
    versions.rename_entity("char2", "Sir Biscuit")
    target = tmp_path / f"story.{kind}"
    handle = versions.export(kind, target)
    if handle is not None:
        qtbot.waitUntil(lambda: not handle.is_running() and target.exists(), timeout=20_000)
    assert target.exists() and target.stat().st_size > 0
    if kind == "pdf":
        data = target.read_bytes()
        assert data.startswith(b"%PDF") and b"/Page" in data
        assert data.count(b"/Subtype /Image") >= 4  # each frame's photo beside its text
        return
    content = target.read_text(encoding="utf-8")
    if kind == "json":
        parsed = json.loads(content)
        assert "Sir Biscuit" in json.dumps(parsed)
        assert len(json.dumps(parsed.get("frames", parsed))) > 1000
    else:
        assert "Sir Biscuit" in content and "Grandpa Joe" in content
    if kind == "html":
        assert content.count("data:image/jpeg;base64,") >= 4
    assert run.id == told_session.open_run.id


def test_copy_as_text_puts_the_plain_story_on_the_clipboard(
    versions: VersionsController,
) -> None:
    versions.copy_story()
    text = QApplication.clipboard().text()
    assert "Grandpa Joe" in text and "<gd" not in text


def _two_versions(qtbot: Any, session: Any, sample_photos: list[Path]) -> tuple[Any, Any, Any]:
    VersionsController(session)  # lists and opens each version as it ends
    generation = GenerationController(session)
    album = session_album(session, sample_photos)
    tell_and_wait(qtbot, generation)
    first = session.open_run
    tell_and_wait(qtbot, generation)
    second = session.open_run
    return album, first, second


def test_versions_switch_delete_and_compare(
    qtbot: Any, make_session: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    asked: list[str] = []
    session = make_session(
        confirm=lambda _parent, _title, _text, action: asked.append(action) or True
    )
    album, first, second = _two_versions(qtbot, session, sample_photos)
    assert first.id != second.id and session.run_model.rowCount() == 2
    versions = session.findChild(VersionsController)
    compared: list[tuple[Any, ...]] = []
    versions.comparison_ready.connect(lambda *args: compared.append(args))
    versions.compare_versions()
    ((left, right, _left_names, _right_names),) = compared
    assert (left.id, right.id) == (first.id, second.id)  # older on the left
    assert "Grandpa Joe" in left.raw_output and "Grandpa Joe" in right.raw_output
    session.select_versions([session.run_model.run_at(1)])
    assert session.open_run.id == first.id
    versions.delete_selected()
    assert asked == [f"Delete version #{first.id}"]  # the button says what it does, not Yes
    assert [r.id for r in library.runs(album.id)] == [second.id]
    assert session.open_run.id == second.id
    assert session.run_model.rowCount() == 1


def test_a_run_is_listed_when_it_starts_and_opened_when_it_ends(
    qtbot: Any, make_session: Callable[..., Any], sample_photos: list[Path]
) -> None:
    session = make_session()
    _album, first, second = _two_versions(qtbot, session, sample_photos)
    assert [run.id for run in session.run_model.runs()] == [second.id, first.id]
    assert second.status.value == "complete"


def test_opening_an_album_opens_its_newest_version(
    qtbot: Any, make_session: Callable[..., Any], sample_photos: list[Path]
) -> None:
    session = make_session()
    album, _first, second = _two_versions(qtbot, session, sample_photos)
    session.create_album("Empty")
    assert session.shown is None and session.run_model.rowCount() == 0
    session.open_album(session.library.album(album.id))
    assert session.open_run.id == second.id


def test_reopening_an_album_shows_its_newest_complete_version_not_a_newer_stopped_one(
    told_session: Any, library: Any, story_output: str
) -> None:
    from ui_sample import scripted_backend

    from desktop_app.app.telling import RunEnded, TellOptions, tell_album
    from desktop_app.library.records import RunStatus

    session = told_session
    complete = library.runs(session.album_id)[0]
    calls = iter(range(10_000))
    ended = tell_album(
        library,
        session.album_id,
        scripted_backend(story_output),
        TellOptions(),
        should_stop=lambda: next(calls) > 40,  # stopped mid-way, after some text
    )
    assert isinstance(ended, RunEnded) and ended.run.status is RunStatus.STOPPED
    assert ended.run.id > complete.id
    controller = VersionsController(session)
    controller.reload_runs(select_latest=True)
    assert session.run_model.run_at(0).id == ended.run.id  # listed first, newest first
    assert session.open_run.id == complete.id  # but the complete one is opened


def test_copy_of_a_version_without_story_text_says_so_and_copies_nothing(
    told_session: Any, library: Any, story_output: str
) -> None:
    from ui_sample import scripted_backend

    from desktop_app.app.telling import TellOptions, tell_album

    session = told_session
    analysis_only = story_output[: story_output.index("<gdi image1>")]
    tell_album(library, session.album_id, scripted_backend(analysis_only), TellOptions())
    controller = VersionsController(session)
    newest = library.runs(session.album_id)[-1]
    controller.open_version(newest.id)
    assert session.open_run.id == newest.id
    QApplication.clipboard().setText("before")
    said: list[str] = []
    session.status_message.connect(lambda text, *_: said.append(text))
    controller.copy_story()
    assert QApplication.clipboard().text() == "before"
    assert said and "no story text" in said[-1] and "copied" not in said[-1]


def test_a_complete_version_with_errors_is_not_listed_as_plain_complete(
    told_session: Any, library: Any, story_output: str
) -> None:
    from PySide6.QtCore import Qt
    from ui_sample import scripted_backend

    from desktop_app.app.telling import TellOptions, tell_album

    session = told_session
    cut = story_output[: len(story_output) // 2]  # the model "finished" mid-way
    tell_album(library, session.album_id, scripted_backend(cut), TellOptions())
    VersionsController(session).reload_runs()
    model = session.run_model
    broken, clean = (model.index(row).data(Qt.ItemDataRole.DisplayRole) for row in (0, 1))
    assert "complete · " in broken and "error" in broken.splitlines()[0]
    assert clean.splitlines()[0].endswith("· complete")


def test_an_export_is_offered_under_a_name_not_a_copy_suffix() -> None:
    from desktop_app.ui.versions import export_name

    assert export_name("Kite day", 2) == "Kite day (version 2)"


def test_the_export_menu_writes_photos_for_photo_managers_into_a_new_folder(
    versions: VersionsController, told_session: Any, qtbot: Any, tmp_path: Path, exiftool: Any
) -> None:
    versions.rename_entity("char1", "Mia")
    target = tmp_path / "Kite day (version 1) captioned-copies"
    handle = versions.export("captioned-copies", target)
    assert handle is not None
    qtbot.waitUntil(lambda: not handle.is_running() and target.is_dir(), timeout=20_000)
    copies = sorted(target.iterdir())
    assert len(copies) == 4
    people = [meta.get("PersonInImage", []) for meta in exiftool(*copies)]
    assert any("Mia" in names for names in people)


# A sidecar the user already has (a photo manager wrote it): one keyword.
KEYWORD_SIDECAR = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:subject><rdf:Bag><rdf:li>Holiday</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def _answer_share_options(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[Any], None]
) -> list[Any]:
    """The share-options dialog, built for real, answered by ``answer(dialog)`` then OK (its
    ``exec`` would wait for a click); returns the dialogs shown."""
    from desktop_app.ui.share_options import ShareOptionsDialog

    shown: list[Any] = []

    def exec_(dialog: Any) -> int:
        shown.append(dialog)
        answer(dialog)
        dialog.summary_shown = dialog.summary.text()
        dialog.accept()
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(ShareOptionsDialog, "exec", exec_)
    return shown


@pytest.fixture
def own_photos(tmp_path: Path) -> list[Path]:
    """The sample photos in this test's own folder (``sample_photos`` is shared by every test:
    nothing may be written beside it)."""
    import ui_sample

    return ui_sample.write_photos(tmp_path / "photos")


@pytest.fixture
def versions_over(
    make_session: Callable[..., Any], story_output: str
) -> Callable[[list[Path]], VersionsController]:
    """``versions_over(photos)``: the versions controller over a session showing the sample
    story told from ``photos``."""
    from ui_sample import scripted_backend

    from desktop_app.app.telling import TellOptions, tell_album

    def build(photos: list[Path]) -> VersionsController:
        session = make_session()
        session_album(session, photos)
        tell_album(session.library, session.album_id, scripted_backend(story_output), TellOptions())
        controller = VersionsController(session)
        controller.reload_runs(select_latest=True)
        assert isinstance(session.shown, OpenVersion)
        return controller

    return build


@pytest.mark.parametrize("naming", ["photo.jpg.xmp", "photo.xmp"])
def test_the_export_menu_writes_sidecars_beside_the_originals_merging_what_is_there(
    versions_over: Callable[[list[Path]], VersionsController],
    own_photos: list[Path],
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
    exiftool: Any,
    naming: str,
) -> None:
    from desktop_app.app.captions import SidecarNaming

    sample_photos = own_photos
    versions = versions_over(own_photos)
    told_session = versions._session

    chosen = SidecarNaming(naming)
    existing = chosen.sidecar_for(sample_photos[0])
    existing.write_text(KEYWORD_SIDECAR, encoding="utf-8")
    before = {photo: photo.read_bytes() for photo in sample_photos}

    def choose(dialog: Any) -> None:
        assert dialog.beside_button.isChecked()  # the default the issue names
        assert dialog.naming_box.currentData() is SidecarNaming.FULL_NAME
        dialog.naming_box.setCurrentIndex(dialog.naming_box.findData(chosen))

    shown = _answer_share_options(monkeypatch, choose)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", lambda *a: pytest.fail("no folder is asked for")
    )
    statuses: list[str] = []
    told_session.status_message.connect(statuses.append)
    versions.export_dialog("sidecars")
    qtbot.waitUntil(lambda: any(s.startswith("Wrote 4 sidecars") for s in statuses), timeout=20_000)

    folder = sample_photos[0].parent
    summary = shown[0].summary_shown  # said before anything was written
    example = chosen.sidecar_for(Path(sample_photos[0].name)).name
    assert f"4 sidecars (such as {example}) will be written beside the photos in {folder}" in (
        summary
    )
    assert "1 of them already exists: the captions are merged into them" in summary
    assert "The photos themselves are not written." in summary
    sidecars = [chosen.sidecar_for(photo) for photo in sample_photos]
    other = SidecarNaming.STEM if chosen is SidecarNaming.FULL_NAME else SidecarNaming.FULL_NAME
    assert not any(other.sidecar_for(photo).exists() for photo in sample_photos)
    metas = exiftool(*sidecars)
    assert all(meta.get("Description") for meta in metas), metas
    assert metas[0]["Subject"] == ["Holiday"]  # the user's keyword is kept
    assert {photo: photo.read_bytes() for photo in sample_photos} == before


def _add_gps(photos: list[Path]) -> None:
    from PIL import Image

    for photo in photos:
        with Image.open(photo) as image:
            pixels = image.copy()
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 39.0)}
        pixels.save(photo, quality=90, exif=exif)


@pytest.mark.parametrize("kind", ["captioned-copies", "sidecars"])
@pytest.mark.parametrize("keep", [False, True])
def test_copies_for_photo_managers_keep_their_location_only_when_ticked(
    versions_over: Callable[[list[Path]], VersionsController],
    own_photos: list[Path],
    qtbot: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exiftool: Any,
    kind: str,
    keep: bool,
) -> None:
    def choose(dialog: Any) -> None:
        if kind == "sidecars":
            dialog.folder_button.setChecked(True)
        assert not dialog.keep_location_box.isChecked()  # unticked unless the user ticks it
        assert dialog.keep_location_box.isEnabled()
        dialog.keep_location_box.setChecked(keep)

    _answer_share_options(monkeypatch, choose)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: str(tmp_path))
    _add_gps(own_photos)
    versions = versions_over(own_photos)
    versions.export_dialog(kind)
    from desktop_app.ui.versions import export_name

    run = versions._session.open_run
    target = tmp_path / f"{export_name('Kite day', run.id)} {kind}"
    qtbot.waitUntil(target.is_dir, timeout=20_000)
    copies = sorted(p for p in target.iterdir() if p.suffix == ".jpg")
    assert len(copies) == 4
    assert all(meta.get("GPSLatitude") for meta in exiftool(*own_photos))
    located = [bool(meta.get("GPSLatitude")) for meta in exiftool(*copies)]
    assert located == [keep] * 4
    if kind == "sidecars":
        assert len(list(target.glob("*.jpg.xmp"))) == 4


def test_cancelling_the_share_options_writes_nothing(
    versions_over: Callable[[list[Path]], VersionsController],
    own_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.ui.share_options import ShareOptionsDialog

    versions = versions_over(own_photos)
    monkeypatch.setattr(ShareOptionsDialog, "exec", lambda dialog: 0)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", lambda *a: pytest.fail("no folder is asked for")
    )
    versions.export_dialog("sidecars")
    versions.export_dialog("captioned-copies")
    assert sorted(p.name for p in own_photos[0].parent.iterdir()) == sorted(
        p.name for p in own_photos
    )


def test_a_sidecar_that_cannot_be_written_beside_its_photo_says_what_to_do(
    versions_over: Callable[[list[Path]], VersionsController],
    own_photos: list[Path],
    qtbot: Any,
) -> None:
    """The tests run as root, whom a read-only folder does not stop: a folder where the
    sidecar should go stands in for a file that cannot be written."""
    from ui_helpers import close_error_dialogs

    from desktop_app.ui import error_dialog

    versions = versions_over(own_photos)
    blocked = own_photos[1].with_name(own_photos[1].name + ".xmp")
    blocked.mkdir()
    before = {photo: photo.read_bytes() for photo in own_photos}
    handle = versions.share_beside_originals()
    assert handle is not None
    qtbot.waitUntil(lambda: bool(error_dialog.open_error_dialogs()), timeout=20_000)
    (message,) = close_error_dialogs()
    assert f"Cannot write {blocked}" in message
    assert "share to a new folder instead" in message
    assert blocked.is_dir() and not any(blocked.iterdir())
    assert {photo: photo.read_bytes() for photo in own_photos} == before
