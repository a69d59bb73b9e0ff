"""The HTML export in a real headless Chromium (tests/conftest.py's ``browser_page``): what a
reader sees has no ids, the page fits a phone (photo above text, nothing to scroll sideways),
and pointing at a tagged word draws its box over that frame's photo, where the story's box
(in the pixels the model saw) lands on the photo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import ui_sample

from desktop_app.app.stored_story import FrameGeometry, StoredStory, box_on_photo
from desktop_app.ui.exporting import export_story

DESKTOP = (1280, 900)
PHONE = (390, 844)
ID_TEXT = re.compile(r"\b(?:char|obj|bg|lm)\d+\b")
# (frame, entity): people, an object, a background region; photos 1, 3 and 4
HOVERED = ((1, "char1"), (3, "obj2"), (4, "char2"), (2, "bg2"))


@pytest.fixture
def sample_page(tmp_path: Path, sample_photos: list[Path]) -> tuple[Path, StoredStory]:
    """The sample story exported as HTML the way the app exports it, and the story."""
    frames = [
        FrameGeometry(i, path, ui_sample.PHOTO_SIZE, ui_sample.PREPARED_SIZE)
        for i, path in enumerate(sample_photos, start=1)
    ]
    stored = StoredStory.parse(ui_sample.story_text(), frames, {"char1": "Maya Lopez"})
    return export_story("html", tmp_path / "kite-day.html", stored, "Kite day"), stored


def _open(page: Any, html: Path, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(html.as_uri())


def _screenshot(page: Any, path: Path, full_page: bool = False) -> None:
    """Save what the page shows (for a person to look at; the bytes are written here because
    Playwright writes ``path=`` from a thread that outlives the test)."""
    path.write_bytes(page.screenshot(full_page=full_page))


def _rect(locator: Any) -> dict[str, float]:
    rect = locator.bounding_box()
    assert rect is not None, "not laid out"
    return rect


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_a_reader_sees_no_ids_and_nothing_overflows(
    browser_page: Any, sample_page: tuple[Path, StoredStory], tmp_path: Path, size: tuple[int, int]
) -> None:
    html, stored = sample_page
    page = browser_page
    _open(page, html, size)
    seen = page.evaluate("document.body.innerText")
    assert "Maya Lopez" in seen and "Grandpa Joe" in seen
    assert ID_TEXT.findall(seen) == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for frame in stored.display().frames:
        photo = _rect(page.locator(f"#image-{frame.index} .photo img"))
        text = _rect(page.locator(f"#image-{frame.index} .text"))
        assert photo["x"] >= 0 and photo["x"] + photo["width"] <= size[0]
        assert text["x"] >= 0 and text["x"] + text["width"] <= size[0]
        if size == PHONE:  # stacked: the photo above the text, both the column's width
            assert photo["y"] + photo["height"] <= text["y"]
            assert text["width"] > 300 and photo["width"] > 300
        else:  # side by side
            assert photo["x"] + photo["width"] <= text["x"]
            assert text["width"] > 500
    _screenshot(page, tmp_path / f"html-{size[0]}.png", full_page=True)
    # The model's notes (ids, tables) are one click away, folded.
    page.locator("details.analysis summary").click()
    assert ID_TEXT.search(page.evaluate("document.body.innerText"))


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280px", "390px"])
def test_pointing_at_a_word_shows_its_box_on_its_photo(
    browser_page: Any, sample_page: tuple[Path, StoredStory], tmp_path: Path, size: tuple[int, int]
) -> None:
    html, stored = sample_page
    page = browser_page
    _open(page, html, size)
    boxes = page.locator(".box")
    assert boxes.count() > 10
    assert all(not box.is_visible() for box in boxes.all())
    for frame, entity in HOVERED:
        word = page.locator(f'#image-{frame} .g[data-ids~="{entity}"]').first
        word.hover()
        box = page.locator(f'#image-{frame} .box[data-id="{entity}"]')
        assert box.is_visible()
        assert [b.get_attribute("data-id") for b in boxes.all() if b.is_visible()] == [entity]
        name = stored.display().name(entity)
        assert box.inner_text() == name  # labelled with who it is
        photo = _rect(page.locator(f"#image-{frame} .photo img"))
        drawn = _rect(box)
        story_box = stored.story.boxes_for(entity)[frame]  # prepared pixels
        x1, y1, x2, y2 = box_on_photo(story_box, ui_sample.PREPARED_SIZE, ui_sample.PHOTO_SIZE)
        sx = photo["width"] / ui_sample.PHOTO_SIZE[0]
        sy = photo["height"] / ui_sample.PHOTO_SIZE[1]
        expected = (photo["x"] + x1 * sx, photo["y"] + y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy)
        got = (drawn["x"], drawn["y"], drawn["width"], drawn["height"])
        assert got == pytest.approx(expected, abs=1.5), f"{entity} in frame {frame}"
        if (frame, entity) == (3, "obj2"):
            _screenshot(page, tmp_path / f"html-hover-{size[0]}.png")
        page.locator("h1").hover()
        assert not box.is_visible()
    # The keyboard reaches a word too: focus shows its box, leaving hides it.
    word = page.locator('#image-2 .g[data-ids~="obj1"]').first
    word.focus()
    assert page.locator('#image-2 .box[data-id="obj1"]').is_visible()
    word.blur()
    assert not page.locator('#image-2 .box[data-id="obj1"]').is_visible()


def test_the_browser_guard_blocks_and_reports_requests_off_this_machine(
    chromium: Any, request_guard: Any
) -> None:
    """What ``browser_page`` relies on: a page's request to another host is blocked and
    recorded; data: passes."""
    context = chromium.new_context()
    try:
        outside = request_guard(context)
        page = context.new_page()
        page.set_content(
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            '<img src="http://192.0.2.1/pixel.png"><img src="https://example.com/a.png">'
        )
        page.wait_for_load_state("load")
    finally:
        context.close()
    assert sorted(set(outside)) == ["http://192.0.2.1/pixel.png", "https://example.com/a.png"]
