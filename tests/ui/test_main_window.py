"""The main flows a user goes through, driven like a user would (offscreen).

Album -> photos dropped from the desktop -> reorder -> generate (scripted backend) -> a live,
structured story -> hover a word and see its box on the right photo -> stop keeps a partial
version -> rename a character -> export.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ui_sample
from PySide6.QtCore import QModelIndex, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from ui_helpers import album_with_photos, close_error_dialogs, drop_urls, generate_and_wait
from ui_sample import scripted_backend

from desktop_app.library.records import RunStatus
from desktop_app.ui.models import AlbumListModel, PhotoListModel, RunListModel

# ----------------------------------------------------------------------------- item models


def test_item_models_pass_qt_model_tester(qtmodeltester: Any, story_window: Any) -> None:
    window = story_window
    assert isinstance(window.album_model, AlbumListModel)
    qtmodeltester.check(window.album_model)
    assert isinstance(window.photo_model, PhotoListModel)
    qtmodeltester.check(window.photo_model)
    assert isinstance(window.run_model, RunListModel)
    qtmodeltester.check(window.run_model)


# ----------------------------------------------------------------------------- albums and photos


def test_create_rename_delete_album_updates_the_list_and_library(
    qtbot: Any, make_window: Callable[..., Any], library: Any
) -> None:
    window = make_window()
    window.new_album("Holiday", edit=False)
    index = window.album_view.currentIndex()
    assert "Holiday" in index.data()
    assert window.album_model.setData(index, "Summer holiday")
    assert [a.name for a in library.albums()] == ["Summer holiday"]
    assert "Summer holiday" in window.album_view.currentIndex().data()
    window.delete_album()
    assert library.albums() == []
    assert window.album_model.rowCount() == 0


def test_dropped_photos_are_imported_and_drag_reorder_is_saved(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = album_with_photos(qtbot, window, sample_photos)
    assert [p.path.name for p in library.photos(album.id)] == [p.name for p in sample_photos]
    assert "4 photos" in window.album_view.currentIndex().data()
    assert "image tokens" in window.cost_label.text()

    # Drag the last photo onto the first one: it moves to the front, in the view and on disk.
    model = window.photo_model
    data = model.mimeData([model.index(3)])
    first = window.filmstrip.visualRect(model.index(0)).center()
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    viewport = window.filmstrip.viewport()
    QApplication.sendEvent(
        viewport, QDragEnterEvent(first, Qt.DropAction.MoveAction, data, buttons, mods)
    )
    QApplication.sendEvent(
        viewport, QDragMoveEvent(first, Qt.DropAction.MoveAction, data, buttons, mods)
    )
    QApplication.sendEvent(
        viewport, QDropEvent(QPointF(first), Qt.DropAction.MoveAction, data, buttons, mods)
    )
    expected = [sample_photos[3].name, *[p.name for p in sample_photos[:3]]]
    assert [p.path.name for p in model.photos()] == expected
    assert [p.path.name for p in library.photos(album.id)] == expected
    assert model.rowCount() == 4  # moved, not copied or removed


# ----------------------------------------------------------------------------- generation


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
    window.generation.generate()
    # While writing: the phase line and a structured (not raw) view of the analysis so far.
    qtbot.waitUntil(
        lambda: "Analysing frame" in window.story_toolbar.phase_label.text(), timeout=10_000
    )
    assert "tokens" in window.story_toolbar.phase_label.text()
    live_text = window.story_panel.browser.toPlainText()
    assert "|" not in live_text and "<think>" not in live_text
    qtbot.waitUntil(
        lambda: "Writing frame" in window.story_toolbar.phase_label.text(), timeout=20_000
    )
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=20_000)

    run = window.current_run
    assert run.status is RunStatus.COMPLETE
    assert run.raw_output == story_output
    text = window.story_panel.browser.toPlainText()
    assert "Frame 4" in text and "Grandpa Joe" in text and "<gdo" not in text
    assert "no problems found" in window.story_panel.issues_label.text()
    assert "tokens/s" in window.status_bar.speed_label.text()
    assert window.run_model.rowCount() == 1


def test_stop_after_the_first_token_keeps_the_partial_story_as_a_stopped_version(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.01))
    album = album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens >= 1,
        timeout=10_000,
    )
    window.generation.stop()
    assert window.generation.is_generating() and not window.act_stop.isEnabled()  # pressed once
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=10_000)
    assert window.act_generate.isEnabled() and not window.act_stop.isEnabled()
    runs = library.runs(album.id)
    assert [r.status for r in runs] == [RunStatus.STOPPED]
    partial = runs[0].raw_output
    assert partial and story_output.startswith(partial) and len(partial) < len(story_output)
    assert window.current_run.id == runs[0].id
    assert "stopped" in window.run_view.currentIndex().data()


def test_closing_while_generating_asks_then_stops_cleanly(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    asked: list[str] = []

    def confirm(_parent: Any, title: str, _text: str) -> bool:
        asked.append(title)
        return True

    window = make_window(scripted_backend(story_output, token_delay_s=0.01), confirm=confirm)
    album = album_with_photos(qtbot, window, sample_photos)
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens >= 3,
        timeout=10_000,
    )
    window.close()
    assert asked == ["Stop writing?"]
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    assert [r.status for r in library.runs(album.id)] == [RunStatus.STOPPED]


# ----------------------------------------------------------------------------- grounding


def expected_scene_rect(frame: int, entity_id: str) -> QRectF:
    """Where ``entity_id``'s box must land on frame ``frame``'s photo (original pixels)."""
    x1, y1, x2, y2 = ui_sample.prepared_box(ui_sample.SCENES[frame - 1].boxes[entity_id])
    pw, ph = ui_sample.PREPARED_SIZE
    ow, oh = ui_sample.PHOTO_SIZE
    return QRectF(x1 * ow / pw, y1 * oh / ph, (x2 - x1) * ow / pw, (y2 - y1) * oh / ph)


def box_rect(box: Any) -> QRectF:
    """A box item's rectangle in scene (original photo) pixels, without its pen's width."""
    pen = box.pen().widthF() / 2
    return box.sceneBoundingRect().adjusted(pen, pen, -pen, -pen)


def assert_rect_close(actual: QRectF, expected: QRectF, tolerance: float = 0.75) -> None:
    for a, e in (
        (actual.left(), expected.left()),
        (actual.top(), expected.top()),
        (actual.right(), expected.right()),
        (actual.bottom(), expected.bottom()),
    ):
        assert abs(a - e) <= tolerance, f"{actual} != {expected}"


def test_hovering_a_word_draws_its_box_at_the_right_place_at_any_window_size(
    story_window: Any, sample_photos: list[Path]
) -> None:
    window = story_window
    panel = window.story_panel
    href = next(h for h, s in panel.spans.items() if s.frame == 3 and s.ids == ("char3",))
    panel.browser.highlighted.emit(QUrl(href))  # what hovering (or tabbing to) the link emits
    view = panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[2].name
    (box,) = view.box_items()
    assert box.overlay.entity_id == "char3"
    expected = expected_scene_rect(3, "char3")
    assert_rect_close(box_rect(box), expected)
    # The photo item covers the whole original photo in the same coordinates.
    assert_rect_close(view.photo_item.sceneBoundingRect(), QRectF(0, 0, *ui_sample.PHOTO_SIZE))
    # On screen the box sits over the same part of the photo, whatever the window size.
    for size in ((1440, 900), (1000, 700)):
        window.resize(*size)
        QApplication.processEvents()
        photo_on_screen = view.mapFromScene(view.photo_item.sceneBoundingRect()).boundingRect()
        box_on_screen = view.mapFromScene(expected).boundingRect()
        fx = (box_on_screen.left() - photo_on_screen.left()) / photo_on_screen.width()
        fy = (box_on_screen.top() - photo_on_screen.top()) / photo_on_screen.height()
        assert abs(fx - expected.left() / ui_sample.PHOTO_SIZE[0]) < 0.01
        assert abs(fy - expected.top() / ui_sample.PHOTO_SIZE[1]) < 0.01


def test_clicking_a_box_highlights_every_mention_of_that_entity(
    qtbot: Any, story_window: Any
) -> None:
    window = story_window
    panel = window.story_panel
    panel.show_entities(1, ("char2",))
    (box,) = panel.photo_view.box_items()
    view = panel.photo_view
    center = view.mapFromScene(box.sceneBoundingRect().center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert panel.selected_id == "char2"
    html = panel.browser.toHtml()
    mentions = sum("char2" in s.ids for s in panel.spans.values())
    assert mentions >= 4
    assert html.count("background-color:#fff2a8") >= mentions


# ----------------------------------------------------------------------------- edits and export


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
    window.rename_entity("char2", "Sir Biscuit")
    target = tmp_path / f"story.{kind}"
    handle = window.export(kind, target)
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


def test_html_exports_embed_each_photo_upright_and_downscaled(tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    from desktop_app.ui.exporting import photo_data_uri

    sideways = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned, show it rotated by 90 degrees
    Image.new("RGB", (300, 100), (200, 30, 30)).save(sideways, exif=exif)
    uri = photo_data_uri(sideways, max_side=150)
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as embedded:
        assert embedded.size == (50, 150)
    assert photo_data_uri(tmp_path / "gone.jpg") is None  # left out, not a failed export


@pytest.mark.parametrize("kind", ["markdown", "pdf"])
def test_an_export_that_cannot_be_written_says_what_to_do(tmp_path: Path, kind: str) -> None:
    from desktop_app.errors import StorytellerError
    from desktop_app.ui import services
    from desktop_app.ui.exporting import export_story

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    story = services.parse_story(ui_sample.story_text())
    with pytest.raises(StorytellerError, match=r"cannot be written \(.*\): choose another folder"):
        export_story(kind, not_a_folder / f"story.{kind}", story, [], {}, {}, "Kite day")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_copy_as_text_puts_the_plain_story_on_the_clipboard(story_window: Any) -> None:
    story_window.copy_story()
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
    window.compare_versions()
    assert window.tabs.currentWidget() is window.compare_panel
    assert "Grandpa Joe" in window.compare_panel.left_browser.toPlainText()
    assert "Grandpa Joe" in window.compare_panel.right_browser.toPlainText()
    assert window.compare_panel.left_combo.currentData() == first.id
    assert window.compare_panel.right_combo.currentData() == second.id
    window._select_run_row(first.id)
    assert window.current_run.id == first.id
    window.delete_current_run()
    assert [r.id for r in library.runs(album.id)] == [second.id]
    assert window.current_run.id == second.id


def test_the_compare_tab_offers_the_versions_the_list_shows(qtbot: Any, story_window: Any) -> None:
    window = story_window
    first = window.current_run
    second = generate_and_wait(qtbot, window)  # no Compare click: the tab must follow anyway
    combo = window.compare_panel.right_combo
    assert [combo.itemData(i) for i in range(combo.count())] == [second.id, first.id]
    assert "complete" in combo.itemText(0)
    window.delete_current_run()  # the newest one is selected
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
    window.compare_versions()
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


# ----------------------------------------------------------------------------- more album work


def dated_photo(path: Path, when: str) -> Path:
    """A small JPEG whose EXIF says it was taken at ``when`` ("YYYY:MM:DD HH:MM:SS")."""
    from PIL import Image

    image = Image.new("RGB", (280, 196), (80, 120, 200))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = when
    image.save(path, exif=exif)
    return path


def test_sort_by_date_and_remove_photos_keep_the_files(
    qtbot: Any, make_window: Callable[..., Any], library: Any, tmp_path: Path
) -> None:
    late = dated_photo(tmp_path / "b-late.jpg", "2024:06:02 18:00:00")
    early = dated_photo(tmp_path / "a-early.jpg", "2024:06:01 09:00:00")
    window = make_window()
    album = album_with_photos(qtbot, window, [late, early])
    window.sort_by_date()
    assert [p.path.name for p in window.photo_model.photos()] == ["a-early.jpg", "b-late.jpg"]
    assert [p.path.name for p in library.photos(album.id)] == ["a-early.jpg", "b-late.jpg"]
    window.filmstrip.setCurrentIndex(window.photo_model.index(0))
    window.remove_selected_photos()
    assert [p.path.name for p in library.photos(album.id)] == ["b-late.jpg"]
    assert early.exists()  # only the album membership was removed


def test_missing_photos_get_a_badge_and_are_left_out_of_the_story(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    tmp_path: Path,
    sample_photos: list[Path],
) -> None:
    copies = []
    for photo in sample_photos[:2]:
        copy = tmp_path / photo.name
        copy.write_bytes(photo.read_bytes())
        copies.append(copy)
    window = make_window()
    album = album_with_photos(qtbot, window, copies)
    copies[1].unlink()  # moved away behind the app's back
    window.reload_albums(select_id=album.id)
    assert "⚠ 1 missing" in window.album_view.currentIndex().data()
    assert "missing" in window.photo_model.index(1).data()
    run = generate_and_wait(qtbot, window)
    assert [p.path.name for p in run.photos] == [copies[0].name]


def test_files_that_are_not_photos_are_reported_by_name(
    qtbot: Any, make_window: Callable[..., Any], tmp_path: Path
) -> None:
    from desktop_app.ui import errors as ui_errors

    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    window = make_window()
    window.new_album("Mixed", edit=False)
    drop_urls(window.filmstrip.viewport(), [notes])
    qtbot.waitUntil(lambda: bool(ui_errors.open_error_dialogs()), timeout=10_000)
    (message,) = close_error_dialogs()
    assert "notes.txt" in message
    assert window.photo_model.rowCount() == 0


class FailingBackend:
    """Writes a few tokens, then fails the way a backend reports a problem the user can fix."""

    description = "failing test backend"

    def generate(self, request: Any, *, should_stop: Any) -> Any:
        from desktop_app.engine.events import Phase, PhaseEvent, TokenEvent
        from desktop_app.errors import StorytellerError

        yield PhaseEvent(Phase.WRITING)
        yield TokenEvent("<think>\n## Image 1\n")
        raise StorytellerError("the server at http://127.0.0.1:9 went away: check that it runs")

    def close(self) -> None:
        pass


def test_a_failing_backend_shows_its_message_and_keeps_a_failed_version(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window(FailingBackend())
    album = album_with_photos(qtbot, window, sample_photos[:1])
    generate_and_wait(qtbot, window)
    (message,) = close_error_dialogs()
    assert "went away: check that it runs" in message
    (run,) = library.runs(album.id)
    assert run.status is RunStatus.FAILED and "went away" in run.error
    assert run.raw_output.startswith("<think>")
    assert window.act_generate.isEnabled()  # the user can try again


def test_analysis_tables_show_the_selected_row_on_the_frame_photo(
    story_window: Any, sample_photos: list[Path]
) -> None:
    from PySide6.QtWidgets import QTableWidget

    window = story_window
    panel = window.analysis_panel
    window.tabs.setCurrentWidget(panel)
    panel.frame_tabs.setCurrentIndex(2)  # frame 3
    photo = panel.frame_photo
    assert photo.photo_path is not None and photo.photo_path.name == sample_photos[2].name
    assert {b.overlay.entity_id for b in photo.box_items()} == {
        "char1",
        "char3",
        "obj1",
        "obj2",
        "bg1",
    }
    characters = panel.frame_tabs.currentWidget().widget().findChildren(QTableWidget)[0]
    characters.setCurrentCell(1, 0)  # Grandpa Joe's row
    (box,) = photo.box_items()
    assert box.overlay.entity_id == "char3"
    assert_rect_close(box_rect(box), expected_scene_rect(3, "char3"))


def test_the_narrative_tab_lists_each_phase_with_its_frames(story_window: Any) -> None:
    table = story_window.analysis_panel.narrative_table
    rows = [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]
    assert [row[0] for row in rows] == ["Introduction", "Development", "Conflict", "Conclusion"]
    assert rows[2][1:] == [
        "The kite is caught in the old oak",
        "Maya cannot reach it; Grandpa Joe arrives",
        "3",
    ]
    assert table.item(2, 2).toolTip() == rows[2][2]  # a cut-off cell shows its text on hover


def test_a_folder_dropped_on_the_album_list_is_imported(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = window.new_album("From a folder", edit=False)
    drop_urls(window.album_view.viewport(), [sample_photos[0].parent])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == len(sample_photos), timeout=10_000)
    assert sorted(p.path.name for p in library.photos(album.id)) == sorted(
        p.name for p in sample_photos
    )


def test_a_validation_issue_jumps_to_its_frame_and_entity(
    qtbot: Any, make_window: Callable[..., Any], sample_photos: list[Path], story_output: str
) -> None:
    # The model names char9 in frame 3's text, but no table defines it.
    broken = story_output.replace(
        "<gdo char3>Grandpa Joe</gdo> <gda char3>came walking over</gda>",
        "<gdo char9>Grandpa Joe</gdo> <gda char3>came walking over</gda>",
    )
    assert broken != story_output
    window = make_window(scripted_backend(broken))
    album_with_photos(qtbot, window, sample_photos)
    generate_and_wait(qtbot, window)
    issues = window.story_panel.issues_list
    assert issues.count() >= 1
    item = next(issues.item(i) for i in range(issues.count()) if "char9" in issues.item(i).text())
    assert "error" in window.story_panel.issues_label.text()
    issues.itemClicked.emit(item)
    view = window.story_panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[2].name


@pytest.mark.slow
def test_switching_albums_while_writing_keeps_each_album_its_own_story(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    sample_photos: list[Path],
    story_output: str,
) -> None:
    window = make_window(scripted_backend(story_output, token_delay_s=0.001))
    first = album_with_photos(qtbot, window, sample_photos, name="Kite day")
    window.generation.generate()
    qtbot.waitUntil(
        lambda: window.generation.live is not None and window.generation.live.tokens > 20,
        timeout=10_000,
    )
    other = window.new_album("Empty", edit=False)
    assert window.current_album_id == other.id
    qtbot.waitUntil(lambda: not window.generation.is_generating(), timeout=30_000)
    assert "No story yet" in window.story_panel.browser.toPlainText()
    assert window.run_model.rowCount() == 0
    window.album_view.setCurrentIndex(window.album_model.index(window.album_model.row_of(first.id)))
    assert "Grandpa Joe" in window.story_panel.browser.toPlainText()
    assert [r.status for r in library.runs(first.id)] == [RunStatus.COMPLETE]


def test_photos_can_be_reordered_with_the_keyboard(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = album_with_photos(qtbot, window, sample_photos)
    window.filmstrip.setFocus()
    window.filmstrip.setCurrentIndex(window.photo_model.index(0))
    qtbot.keyClick(window.filmstrip, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window.filmstrip, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    names = [p.name for p in sample_photos]
    expected = [names[1], names[2], names[0], names[3]]
    assert [p.path.name for p in library.photos(album.id)] == expected
    window.move_selected_photos(-1)
    assert [p.path.name for p in library.photos(album.id)] == [names[1], names[0], *names[2:]]


def test_clicking_a_photo_in_the_strip_shows_it_with_its_boxes(
    qtbot: Any, story_window: Any, sample_photos: list[Path]
) -> None:
    window = story_window
    rect = window.filmstrip.visualRect(window.photo_model.index(1))
    qtbot.mouseClick(window.filmstrip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    view = window.story_panel.photo_view
    assert view.photo_path is not None and view.photo_path.name == sample_photos[1].name
    assert {b.overlay.entity_id for b in view.box_items()} == {"char1", "char2", "obj1", "bg2"}


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
    window.reload_albums(select_id=album.id)
    return album, moved, moved / copy.name


def relink_and_wait(qtbot: Any, window: Any, folder: Path) -> None:
    handle = window.relink(folder)
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
    assert "missing" in window.album_view.currentIndex().data()
    relink_and_wait(qtbot, window, moved)
    qtbot.waitUntil(lambda: "missing" not in window.album_view.currentIndex().data())
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
    from desktop_app.library import store

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

    monkeypatch.setattr(store, "sha256_file", refusing_sha256)
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

    from desktop_app.library import store

    folder = tmp_path / "big folder"
    folder.mkdir()
    for index in range(SLOW_IMPORT_FILES):
        Image.new("RGB", (8, 8), (index * 6, 100, 200)).save(folder / f"img{index:02d}.png")
    read: list[Path] = []
    real_read = store.read_photo_facts

    def slow_read(path: Path) -> Any:
        read.append(path)
        time.sleep(SLOW_IMPORT_S_PER_FILE)
        return real_read(path)

    monkeypatch.setattr(store, "read_photo_facts", slow_read)
    return folder, read


def test_closing_the_window_during_a_big_import_returns_promptly(
    qtbot: Any,
    make_window: Callable[..., Any],
    library: Any,
    slow_import: tuple[Path, list[Path]],
) -> None:
    folder, read = slow_import
    window = make_window()
    album = window.new_album("Big", edit=False)
    window.import_paths([folder])
    assert window.is_importing()
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
    album = window.new_album("Big", edit=False)
    assert window.cancel_import_button.isHidden()
    drop_urls(window.filmstrip.viewport(), [folder])
    qtbot.waitUntil(lambda: len(read) >= 2, timeout=5_000)
    assert window.cancel_import_button.isVisible() and window.cancel_import_button.isEnabled()
    qtbot.mouseClick(window.cancel_import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.is_importing(), timeout=2_000)
    qtbot.waitUntil(lambda: window.cancel_import_button.isHidden(), timeout=2_000)
    kept = library.photos(album.id)
    assert 2 <= len(kept) < SLOW_IMPORT_FILES
    assert window.photo_model.rowCount() == len(kept)
    assert (
        window.statusBar()
        .currentMessage()
        .startswith(f"Import stopped. Added {len(kept)} photo(s)")
    )


def test_the_cost_warns_when_the_story_would_not_fit_in_memory(
    qtbot: Any,
    make_window: Callable[..., Any],
    sample_photos: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.engine import costs

    window = make_window()
    album_with_photos(qtbot, window, sample_photos)
    assert "⚠" not in window.cost_label.text()
    monkeypatch.setattr(costs, "physical_memory_bytes", lambda: 2 * 2**30)  # a 2 GiB machine
    window.story_toolbar.detail_combo.setCurrentIndex(2)  # high detail: the estimate is recomputed
    assert "⚠" in window.cost_label.text()
    assert "GiB of memory" in window.cost_label.toolTip()
    window.filmstrip.selectAll()
    window.remove_selected_photos()  # no photos left: no estimate to explain
    assert "⚠" not in window.cost_label.text()
    assert "GiB" not in window.cost_label.toolTip()


def test_photos_dropped_with_no_album_selected_go_into_a_new_album(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    library.create_album("New album")  # the default name is taken: the app picks another
    window.reload_albums()
    window.album_view.setCurrentIndex(QModelIndex())
    window._show_album(None)
    drop_urls(window.filmstrip.viewport(), sample_photos[:2])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == 2, timeout=10_000)
    assert sorted(a.name for a in library.albums()) == ["New album", "New album 2"]


def test_generating_without_a_model_says_what_to_do_and_keeps_no_empty_version(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    from desktop_app.settings import Settings
    from desktop_app.ui import services

    settings = Settings()  # no model files, no server, none installed in this test home
    window = make_window(
        settings=settings, backend_factory=lambda: services.backend_from_settings(settings)
    )
    album = album_with_photos(qtbot, window, sample_photos[:1])
    generate_and_wait(qtbot, window)
    (text,) = close_error_dialogs()
    assert "No model is set up yet" in text and "First-run guide" in text
    assert library.runs(album.id) == []
    assert window.run_model.rowCount() == 0
