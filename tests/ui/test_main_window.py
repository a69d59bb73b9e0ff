"""End to end through the whole window: the few flows that cross every part (the parts are
tested alone in their own files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from ui_helpers import album_with_photos, drop_urls, generate_and_wait
from ui_sample import scripted_backend

from desktop_app.library.records import RunStatus


@pytest.mark.end_to_end
@pytest.mark.slow
def test_generate_shows_a_live_structured_story_and_keeps_it_as_a_version(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.002))
    album_with_photos(qtbot, window, sample_photos)
    assert "4 photos" in window.sidebar.album_view.currentIndex().data()
    window.generation.generate()
    # While writing: the phase line and a structured (not raw) view of the analysis so far.
    qtbot.waitUntil(
        lambda: "Analysing frame" in window.status_bar.phase_label.text(), timeout=10_000
    )
    assert "tokens" in window.status_bar.phase_label.text()
    assert not window.story_toolbar.detail_combo.isEnabled()  # the run's choices are fixed
    live_text = window.story_panel.browser.toPlainText()
    assert "|" not in live_text and "<think>" not in live_text
    qtbot.waitUntil(lambda: "Writing frame" in window.status_bar.phase_label.text(), timeout=20_000)
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=20_000)

    run = window.current_run
    assert run.status is RunStatus.COMPLETE
    assert run.raw_output == story_output
    text = window.story_panel.browser.toPlainText()
    assert "Frame 4" in text and "Grandpa Joe" in text and "<gdo" not in text
    assert "no problems found" in window.story_panel.issues_label.text()
    assert "tokens/s" in window.status_bar.speed_label.text()
    assert window.run_model.rowCount() == 1
    assert "complete" in window.sidebar.run_view.currentIndex().data()
    assert window.story_toolbar.detail_combo.isEnabled()


@pytest.mark.end_to_end
def test_closing_while_generating_asks_then_stops_cleanly(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    asked: list[str] = []

    def confirm(_parent: Any, title: str, _text: str, action: str) -> bool:
        asked.append(f"{title} {action}")
        return True

    window = make_window(scripted_backend(story_output, token_delay_s=0.01), confirm=confirm)
    album = album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens >= 3,
        timeout=10_000,
    )
    window.close()
    assert asked == ["Stop writing? Stop and quit"]  # a verb on the button, not Yes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert [r.status for r in library.runs(album.id)] == [RunStatus.STOPPED]


@pytest.mark.end_to_end
def test_renaming_a_character_in_the_cast_shows_everywhere(
    story_window: Any, library: Any, story_output: str
) -> None:
    window = story_window
    run = window.current_run
    gallery = window.analysis_panel.cast_list
    item = next(gallery.item(i) for i in range(gallery.count()) if gallery.item(i).text() == "Maya")
    item.setText("Mia")  # what editing the name in the cast gallery does
    assert library.display_names(run.id) == {"char1": "Mia"}
    assert library.run(run.id).raw_output == story_output  # the model's output is untouched
    story_text = window.story_panel.browser.toPlainText()
    assert "Mia" in story_text and "Maya" not in story_text
    assert window.analysis_panel.cast_names()["char1"] == "Mia"
    matrix = window.analysis_panel.matrix
    labels = [matrix.verticalHeaderItem(r).text() for r in range(matrix.rowCount())]
    assert "Mia" in labels and not any("char1" in label for label in labels)
    assert (
        "Mia"
        in window.analysis_panel.frame_tabs.widget(0)
        .widget()
        .findChildren(type(matrix))[0]
        .item(0, 1)
        .text()
    )
    # Crops come from the boxes: every character has a picture.
    assert all(not gallery.item(i).icon().isNull() for i in range(3))


@pytest.mark.end_to_end
def test_commands_are_enabled_only_when_they_can_do_something(
    qtbot: Any, make_window: Callable[..., Any], sample_photos: list[Path]
) -> None:
    window = make_window()
    acts = window.acts
    assert acts["new_album"].isEnabled() and acts["add_photos"].isEnabled()
    for name in ("rename_album", "delete_album", "remove_photos", "generate", "stop", "copy"):
        assert not acts[name].isEnabled(), f"{name} is enabled without an album"
    album_with_photos(qtbot, window, sample_photos)
    assert acts["rename_album"].isEnabled() and acts["generate"].isEnabled()
    assert not acts["remove_photos"].isEnabled()  # no photo selected yet
    assert not window.filmstrip.remove_photos_button.isEnabled()  # the button follows
    window.filmstrip.view.setCurrentIndex(window.photo_model.index(0))
    assert acts["remove_photos"].isEnabled() and acts["move_later"].isEnabled()
    assert window.filmstrip.remove_photos_button.isEnabled()
    assert not acts["export_pdf"].isEnabled() and not acts["present"].isEnabled()  # no story yet
    generate_and_wait(qtbot, window)
    assert acts["copy"].isEnabled() and acts["export_pdf"].isEnabled()
    assert acts["present"].isEnabled() and acts["present"].shortcut().toString() == "F5"
    acts["present"].trigger()  # View → Present: the version being read, full screen
    shown = window.presenting.presentation
    assert shown is not None and shown.isFullScreen()
    assert shown.stored.story == window.session.shown.stored.story
    shown.close()
    qtbot.waitUntil(lambda: window.presenting.presentation is None)
    assert not acts["compare"].isEnabled()  # one version: nothing to compare it with
    generate_and_wait(qtbot, window)
    assert acts["compare"].isEnabled()
    window.versions.compare_versions()
    assert window.tabs.currentWidget() is window.compare_panel
    assert window.story_toolbar.detail_combo.isEnabled()  # the run's choices are free again


@pytest.mark.end_to_end
def test_a_folder_dropped_on_the_window_is_imported_and_a_missing_photo_is_flagged(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
) -> None:
    folder = tmp_path / "trip"
    folder.mkdir()
    for photo in sample_photos[:2]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    window = make_window()
    album = window.sidebar.new_album("From a folder", edit=False)
    drop_urls(window.sidebar.album_view.viewport(), [folder])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == 2, timeout=10_000)
    assert sorted(p.path.name for p in library.photos(album.id)) == sorted(
        p.name for p in sample_photos[:2]
    )
    (folder / sample_photos[1].name).unlink()  # moved away behind the app's back
    window.sidebar.reload_albums(select_id=album.id)
    assert "⚠ 1 missing" in window.sidebar.album_view.currentIndex().data()
    assert "missing" in window.photo_model.index(1).data()
    window.generation.generate()
    assert not window.generation.is_generating()
    box = window.findChild(QMessageBox, "missingPhotosDialog")
    assert box is not None and box.isVisible()
    assert sample_photos[1].name in box.text() and "relink" in box.text()
    box.reject()
