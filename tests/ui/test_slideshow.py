"""The slideshow file (``album share --as slideshow``) in a real headless Chromium: it moves by
key, click and a touch swipe; its box overlay lands on the coloured rectangle each test photo
carries where the story's box is (found in a screenshot, not computed from the same formula),
on a phone (390x844) and a laptop (1280x800), for an upright photo and for one stored sideways
with an EXIF orientation; and it fetches nothing but data: and file: URLs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import ui_sample
from PIL import Image, ImageDraw

from desktop_app.app.exports import photo_boxes
from desktop_app.app.sharing import SHARE_FORMATS, ShareSource
from desktop_app.app.stored_story import FrameGeometry, StoredStory, box_on_photo

PHONE = (390, 844)
LAPTOP = (1280, 800)
MARK = (255, 0, 255)  # the rectangle painted where the story's box is
# (frame, entity, stored sideways with EXIF orientation 6)
MARKED = ((1, "char1", True), (3, "obj1", False))
TOLERANCE_PX = 2.0


def _story_box(stored: StoredStory, frame: int, entity: str) -> tuple[float, ...]:
    box = stored.story.boxes_for(entity)[frame]
    return box_on_photo(box, ui_sample.PREPARED_SIZE, ui_sample.PHOTO_SIZE)


@pytest.fixture
def slideshow(tmp_path: Path, sample_photos: list[Path]) -> tuple[Path, StoredStory]:
    """The sample album as a slideshow, its photos 1 and 3 carrying a magenta rectangle where
    the story's char1 (frame 1) and obj1 (frame 3) boxes are; photo 1 is stored sideways."""
    frames = [
        FrameGeometry(i, path, ui_sample.PHOTO_SIZE, ui_sample.PREPARED_SIZE)
        for i, path in enumerate(sample_photos, start=1)
    ]
    stored = StoredStory.parse(ui_sample.story_text(), frames, {"char1": "Maya Lopez"})
    photos = list(sample_photos)
    for frame, entity, sideways in MARKED:
        with Image.open(photos[frame - 1]) as original:
            upright = original.convert("RGB")
        ImageDraw.Draw(upright).rectangle(
            [round(v) for v in _story_box(stored, frame, entity)], fill=MARK
        )
        marked = tmp_path / f"marked-{frame}.jpg"
        if sideways:  # stored turned a quarter to the left; the viewer turns it back
            exif = Image.Exif()
            exif[0x0112] = 6
            upright.transpose(Image.Transpose.ROTATE_90).save(marked, quality=95, exif=exif)
        else:
            upright.save(marked, quality=95)
        photos[frame - 1] = marked
    frames = [
        FrameGeometry(i, path, ui_sample.PHOTO_SIZE, ui_sample.PREPARED_SIZE)
        for i, path in enumerate(photos, start=1)
    ]
    stored = StoredStory(stored.story, stored.issues, tuple(frames), stored.names)
    source = ShareSource("Kite day", "12–14 May 2024", stored)
    page = SHARE_FORMATS["slideshow"].write(source, tmp_path / "kite-day.html")
    return page, stored


@pytest.fixture
def touch_page(chromium: Any, request_guard: Any) -> Any:
    """A page in a touch-enabled context; every request it makes is recorded
    (``page.requested``) and any off this machine fails the test."""
    context = chromium.new_context(has_touch=True)
    outside = request_guard(context)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.requested = requested
    yield page
    context.close()
    assert not outside, f"the slideshow tried to reach outside this machine: {outside}"


def _open(page: Any, html: Path, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(html.as_uri())


def _at(page: Any) -> int:
    """The slide shown, checked against what is visible: exactly one slide."""
    shown = [i for i, slide in enumerate(page.locator(".slide").all()) if slide.is_visible()]
    assert len(shown) == 1, shown
    assert page.evaluate("document.body.dataset.slide") == str(shown[0])
    return shown[0]


def _swipe(page: Any, from_x: float, to_x: float, y: float = 420) -> None:
    """A one-finger horizontal swipe, as the touch screen sends it (DevTools input events)."""
    cdp = page.context.new_cdp_session(page)
    steps = 6
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": from_x, "y": y}]}
    )
    for n in range(1, steps + 1):
        x = from_x + (to_x - from_x) * n / steps
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_the_slideshow_moves_by_key_click_and_swipe_and_fetches_nothing(
    touch_page: Any, slideshow: tuple[Path, StoredStory]
) -> None:
    html, stored = slideshow
    page = touch_page
    _open(page, html, PHONE)
    slides = len(stored.display().frames) + 2  # title, one per frame, end
    assert page.locator(".slide").count() == slides
    assert _at(page) == 0
    assert page.locator(".slide.title h1").inner_text() == "Kite day"
    assert "12–14 May 2024" in page.locator(".slide.title").inner_text()
    assert page.locator("#where").inner_text() == f"1 / {slides}"

    for key, expected in (
        ("ArrowRight", 1),
        ("Space", 2),
        ("PageDown", 3),
        ("ArrowLeft", 2),
        ("PageUp", 1),
        ("End", slides - 1),
        ("ArrowRight", slides - 1),  # the end stays the end
        ("Home", 0),
        ("ArrowLeft", 0),
    ):
        page.keyboard.press(key)
        assert _at(page) == expected, key
    assert page.locator(".slide.end").is_visible() is False

    page.mouse.click(PHONE[0] * 0.8, 300)  # right of the screen: forward
    assert _at(page) == 1
    page.mouse.click(PHONE[0] * 0.8, 300)
    assert _at(page) == 2
    page.mouse.click(PHONE[0] * 0.1, 300)  # left third: back
    assert _at(page) == 1
    page.locator("#next").click()
    assert _at(page) == 2
    page.locator("#prev").click()
    assert _at(page) == 1

    _swipe(page, 320, 80)  # finger moves left: the next slide
    assert _at(page) == 2
    _swipe(page, 320, 80)
    assert _at(page) == 3
    _swipe(page, 80, 320)  # right: back
    assert _at(page) == 2
    _swipe(page, 200, 180)  # too short to be a swipe
    assert _at(page) == 2

    # Frame 2's text reads as in the story view: names applied, no ids.
    text = page.locator(".slide.current .text").inner_text()
    assert "Maya Lopez" in text and "char1" not in text
    assert page.locator(".slide.current .g").count() > 0

    schemes = {urlsplit(url).scheme for url in page.requested}
    assert schemes <= {"data", "file"}, page.requested
    assert "file" in schemes  # the page itself (Chromium does not report data: loads)
    images = page.locator(".slide img")
    assert images.count() == len(stored.display().frames)
    assert all(
        img.get_attribute("src").startswith("data:image/jpeg;base64,") for img in images.all()
    )


def _mark_rect(png: bytes, within: dict[str, float]) -> tuple[float, float, float, float]:
    """The box (x, y, width, height in CSS pixels) of the magenta pixels inside ``within``."""
    with Image.open(io.BytesIO(png)) as shot:
        image = shot.convert("RGB")
    left, top = int(within["x"]), int(within["y"])
    crop = image.crop((left, top, left + int(within["width"]), top + int(within["height"])))
    pixels = crop.load()
    xs, ys = [], []
    for y in range(crop.height):
        for x in range(crop.width):
            r, g, b = pixels[x, y]
            if r > 200 and b > 200 and g < 90:
                xs.append(x)
                ys.append(y)
    assert xs, "the coloured rectangle is not on the screen"
    return (left + min(xs), top + min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)


@pytest.mark.parametrize("size", [PHONE, LAPTOP], ids=["390x844", "1280x800"])
def test_the_box_overlay_lands_on_the_coloured_rectangle(
    browser_page: Any, slideshow: tuple[Path, StoredStory], tmp_path: Path, size: tuple[int, int]
) -> None:
    html, stored = slideshow
    page = browser_page
    _open(page, html, size)
    for frame, entity, _sideways in MARKED:
        page.keyboard.press("Home")
        for _ in range(frame):
            page.keyboard.press("ArrowRight")
        slide = page.locator(f"#frame-{frame}")
        assert slide.is_visible()
        photo = slide.locator(".photo img").bounding_box()
        text = slide.locator(".text").bounding_box()
        assert photo is not None and text is not None
        assert photo["x"] >= 0 and photo["x"] + photo["width"] <= size[0] + 0.5
        if size == PHONE:  # narrow: the photo above the text, as wide as the screen allows
            assert photo["y"] + photo["height"] <= text["y"] + 0.5
            assert photo["width"] > size[0] - 40
        else:  # wide: the text beside the photo
            assert photo["x"] + photo["width"] <= text["x"] + 0.5
            assert photo["height"] > 0.6 * size[1]
        # The displayed photo is upright (its proportions are the upright photo's).
        ratio = ui_sample.PHOTO_SIZE[0] / ui_sample.PHOTO_SIZE[1]
        assert photo["width"] / photo["height"] == pytest.approx(ratio, rel=0.01)
        boxes = slide.locator(".box")
        assert not any(box.is_visible() for box in boxes.all())
        mark = _mark_rect(page.screenshot(), photo)

        page.keyboard.press("b")  # every box of the frame
        assert all(box.is_visible() for box in boxes.all())
        assert boxes.count() == len(photo_boxes(stored)[frame]) > 1
        drawn = slide.locator(f'.box[data-id="{entity}"]').bounding_box()
        assert drawn is not None
        got = (drawn["x"], drawn["y"], drawn["width"], drawn["height"])
        assert got == pytest.approx(mark, abs=TOLERANCE_PX), f"{entity} on frame {frame}"
        if frame == 1:
            shot = tmp_path / f"slideshow-{size[0]}x{size[1]}.png"
            shot.write_bytes(page.screenshot())
        page.locator("#boxes").click()  # the button toggles them off again
        assert not any(box.is_visible() for box in boxes.all())

        # Pointing at (or tapping) a tagged word shows its boxes only.
        slide.locator(f'.g[data-ids~="{entity}"]').first.hover()
        shown = [b.get_attribute("data-id") for b in boxes.all() if b.is_visible()]
        assert shown == [entity]
        page.mouse.move(1, 1)
