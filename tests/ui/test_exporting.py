"""Export files: a clear message when the file cannot be written (how photos are embedded is
tested with app.exports, which every export uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ui_sample


@pytest.mark.parametrize("kind", ["markdown", "pdf"])
def test_an_export_that_cannot_be_written_says_what_to_do(
    qapp: Any, tmp_path: Path, kind: str
) -> None:  # qapp: Qt lays out the PDF's text with the application's fonts
    from desktop_app.app.stored_story import StoredStory
    from desktop_app.errors import StorytellerError
    from desktop_app.ui.exporting import export_story

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    stored = StoredStory.parse(ui_sample.story_text(), [])
    with pytest.raises(StorytellerError, match=r"cannot be written \(.*\): choose another folder"):
        export_story(kind, not_a_folder / f"story.{kind}", stored, "Kite day")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("kind", ["html", "pdf"])
def test_an_export_on_a_full_disk_says_so_and_leaves_nothing(
    qapp: Any, small_disk: Any, kind: str
) -> None:
    from desktop_app.app.stored_story import StoredStory
    from desktop_app.errors import DiskFullError
    from desktop_app.ui.exporting import export_story

    small_disk.fill()
    stored = StoredStory.parse(ui_sample.story_text(), [])
    with pytest.raises(DiskFullError) as raised:
        export_story(kind, small_disk.path / f"story.{kind}", stored, "Kite day")
    message = str(raised.value)
    assert f"the disk of {small_disk.path} is full (it needs about" in message
    assert "the version is unchanged" in message
    assert [p.name for p in small_disk.path.iterdir()] == [".filler"]


@pytest.fixture
def opened_urls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every URL handed to the system (QDesktopServices.openUrl), which opens nothing here."""
    from PySide6.QtGui import QDesktopServices

    urls: list[Any] = []

    def record(url: Any) -> bool:
        urls.append(url)
        return True

    monkeypatch.setattr(QDesktopServices, "openUrl", record)
    return urls


def test_after_an_export_the_notice_opens_the_file_or_its_folder(
    qtbot: Any, tmp_path: Path, opened_urls: list[Any]
) -> None:
    from PySide6.QtCore import Qt, QUrl

    from desktop_app.ui.exporting import show_export_notice

    path = tmp_path / "Kite day.pdf"
    path.write_bytes(b"%PDF")
    notice = show_export_notice(path)
    qtbot.waitExposed(notice)
    assert not notice.isModal()  # the window stays usable
    assert "Kite day.pdf" in notice.message.text() and str(tmp_path) in notice.message.text()
    qtbot.mouseClick(notice.open_button, Qt.MouseButton.LeftButton)
    assert opened_urls == [QUrl.fromLocalFile(str(path))]
    qtbot.waitUntil(lambda: not notice.isVisible())

    again = show_export_notice(path)
    qtbot.mouseClick(again.folder_button, Qt.MouseButton.LeftButton)
    assert opened_urls[1] == QUrl.fromLocalFile(str(tmp_path))
    assert opened_urls[1].toLocalFile().rstrip("/") == str(tmp_path)


def test_a_new_notice_replaces_the_last_and_a_failed_open_says_so(
    qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QDesktopServices

    from desktop_app.ui.exporting import show_export_notice

    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: False)
    first = show_export_notice(tmp_path / "a.html")
    second = show_export_notice(tmp_path / "b.html")
    assert not first.isVisible() and second.isVisible()
    qtbot.mouseClick(second.open_button, Qt.MouseButton.LeftButton)
    assert second.isVisible()  # nothing opened: the notice stays and says why
    assert "b.html could not be opened" in second.message.text()
    second.close()


def test_exporting_a_version_shows_the_notice_when_the_file_is_written(
    qtbot: Any, told_session: Any, tmp_path: Path, opened_urls: list[Any]
) -> None:
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui.exporting import ExportNotice
    from desktop_app.ui.versions import VersionsController

    versions = VersionsController(told_session)
    versions.reload_runs(select_latest=True)
    target = tmp_path / "kite-day.md"
    handle = versions.export("markdown", target)
    assert handle is not None

    def notices() -> list[ExportNotice]:
        return [w for w in QApplication.topLevelWidgets() if isinstance(w, ExportNotice)]

    qtbot.waitUntil(lambda: any(n.isVisible() for n in notices()), timeout=20_000)
    (notice,) = [n for n in notices() if n.isVisible()]
    assert target.exists() and notice.path == target
    assert (
        f"kite-day.md ({target.stat().st_size / 1024:.0f} kB) is saved in" in notice.message.text()
    )
    notice.folder_button.click()
    assert [url.toLocalFile().rstrip("/") for url in opened_urls] == [str(tmp_path)]


def test_the_export_menu_writes_a_slideshow_of_the_open_version_under_its_names(
    qtbot: Any, told_session: Any, tmp_path: Path
) -> None:
    """The GUI's Export goes through the share formats (``app.sharing``): the slideshow of the
    version being read, titled with the album's name, with the user's names."""
    from desktop_app.ui.versions import VersionsController

    versions = VersionsController(told_session)
    versions.reload_runs(select_latest=True)
    versions.rename_entity("char1", "Maya Lopez")
    target = tmp_path / "kite-day.html"
    handle = versions.export("slideshow", target)
    assert handle is not None
    qtbot.waitUntil(target.exists, timeout=20_000)
    page = target.read_text(encoding="utf-8")
    album = told_session.album.name
    assert f"<title>{album}</title>" in page and f"<h1>{album}</h1>" in page
    frames = len(told_session.shown.stored.display().frames)
    assert page.count('<section class="slide') == frames + 2
    assert page.count("data:image/jpeg;base64,") == frames
    assert "Maya Lopez" in page


def test_the_share_options_dialog_says_what_each_choice_writes(qtbot: Any, tmp_path: Path) -> None:
    """Sidecars: beside the originals by default, with what will be written said first; a new
    folder of copies offers the location (unticked). Captioned copies: only the location."""
    from desktop_app.app.captions import SidecarNaming
    from desktop_app.ui.share_options import ShareChoice, ShareOptionsDialog

    photos = [tmp_path / "a" / "one.jpg", tmp_path / "a" / "two.jpg", tmp_path / "b" / "three.jpg"]
    for photo in photos:
        photo.parent.mkdir(exist_ok=True)
        photo.write_bytes(b"")
    (tmp_path / "b" / "three.xmp").write_text("", encoding="utf-8")

    dialog = ShareOptionsDialog("sidecars", photos)
    qtbot.addWidget(dialog)
    assert dialog.choice() == ShareChoice()  # beside, photo.jpg.xmp, no location
    text = dialog.summary.text()
    assert (
        "3 sidecars (such as one.jpg.xmp) will be written beside the photos in the 2 folders"
        in text
    )
    assert "merged into, never replaced" in text and "not written" in text
    assert not dialog.keep_location_box.isEnabled()  # nothing is copied
    dialog.naming_box.setCurrentIndex(dialog.naming_box.findData(SidecarNaming.STEM))
    assert "(such as one.xmp)" in dialog.summary.text()
    assert "1 of them already exists" in dialog.summary.text()  # b/three.xmp
    dialog.folder_button.setChecked(True)
    assert "new folder you choose next" in dialog.summary.text()
    assert dialog.keep_location_box.isEnabled() and not dialog.keep_location_box.isChecked()
    dialog.keep_location_box.setChecked(True)
    assert dialog.choice() == ShareChoice(False, SidecarNaming.STEM, True)

    copies = ShareOptionsDialog("captioned-copies", photos)
    qtbot.addWidget(copies)
    assert copies.beside_button.isHidden() and copies.naming_box.isHidden()
    assert "with the captions inside" in copies.summary.text()
    assert copies.keep_location_box.isEnabled() and not copies.choice().keep_location
    assert not copies.choice().beside_originals
