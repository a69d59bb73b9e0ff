"""The versions of a story: switching, deleting and comparing them, renaming a character in one,
and exporting or copying the open one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QApplication
from ui_helpers import album_with_photos, generate_and_wait


def test_renaming_a_character_shows_everywhere_and_is_stored_as_an_edit(
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
    assert "Mia (char1)" in labels
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


@pytest.mark.parametrize("kind", ["html", "markdown", "json", "pdf"])
def test_export_writes_the_story_with_the_users_names(
    qtbot: Any, story_window: Any, tmp_path: Path, kind: str
) -> None:
    window = story_window
    run = window.current_run
    window.versions.rename_entity("char2", "Sir Biscuit")
    target = tmp_path / f"story.{kind}"
    handle = window.versions.export(kind, target)
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
    assert run.id == window.current_run.id


def test_copy_as_text_puts_the_plain_story_on_the_clipboard(story_window: Any) -> None:
    story_window.versions.copy_story()
    text = QApplication.clipboard().text()
    assert "Grandpa Joe" in text and "<gd" not in text


def test_versions_switch_delete_and_compare(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window()
    album = album_with_photos(qtbot, window, sample_photos)
    first = generate_and_wait(qtbot, window)
    second = generate_and_wait(qtbot, window)
    assert window.run_model.rowCount() == 2
    window.versions.compare_versions()
    assert window.tabs.currentWidget() is window.compare_panel
    assert "Grandpa Joe" in window.compare_panel.left_browser.toPlainText()
    assert "Grandpa Joe" in window.compare_panel.right_browser.toPlainText()
    assert window.compare_panel.left_combo.currentData() == first.id
    assert window.compare_panel.right_combo.currentData() == second.id
    window.versions.select_run_row(first.id)
    assert window.current_run.id == first.id
    window.versions.delete_current_run()
    assert [r.id for r in library.runs(album.id)] == [second.id]
    assert window.current_run.id == second.id


def test_the_compare_tab_offers_the_versions_the_list_shows(qtbot: Any, story_window: Any) -> None:
    window = story_window
    first = window.current_run
    second = generate_and_wait(qtbot, window)  # no Compare click: the tab must follow anyway
    combo = window.compare_panel.right_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [second.id, first.id]
    assert "complete" in combo.itemText(0)
    window.versions.delete_current_run()  # the newest one is selected
    assert [combo.itemData(i) for i in range(combo.count())] == [first.id]


def test_compared_versions_show_each_frames_photo_and_a_header(
    qtbot: Any,
    make_window: Callable[..., Any],
    sample_photos: list[Path],
) -> None:
    from PySide6.QtGui import QImage, QTextDocument

    window = make_window()
    album_with_photos(qtbot, window, sample_photos)
    first = generate_and_wait(qtbot, window)
    second = generate_and_wait(qtbot, window)
    window.versions.compare_versions()
    panel = window.compare_panel
    frames = range(1, len(sample_photos) + 1)
    for run, header, browser in (
        (first, panel.left_header, panel.left_browser),
        (second, panel.right_header, panel.right_browser),
    ):
        markup = browser.toHtml()
        for frame in frames:
            assert f'src="frame-photo:{frame}"' in markup  # the photo beside the frame's text
            image = browser.document().resource(
                QTextDocument.ResourceType.ImageResource, QUrl(f"frame-photo:{frame}")
            )
            assert isinstance(image, QImage) and not image.isNull()
        assert "Grandpa Joe" in browser.toPlainText()
        text = header.text()
        assert f"Version #{run.id}" in text
        assert "complete" in text
        assert run.created[:10] in text  # the date
        assert "preset faithful" in text
        assert "model " in text and "scripted" in text
    # Each frame's thumbnail is that frame's photo: the four sample photos differ in colour.
    left = panel.left_browser.document()
    colours = {
        left.resource(QTextDocument.ResourceType.ImageResource, QUrl(f"frame-photo:{f}"))
        .pixelColor(5, 5)
        .name()
        for f in frames
    }
    assert len(colours) == len(sample_photos)
