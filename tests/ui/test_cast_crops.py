"""The cast gallery's crops: each icon shows what is inside the entity's box, and nothing beside it.

The sample photos are drawn from known rectangles (ui_sample.SCENES), so the part of each icon
that is not padding can be compared with the photo cut to that rectangle.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import ui_sample
from PIL import Image, ImageChops, ImageStat
from PySide6.QtCore import QBuffer, QIODevice
from PySide6.QtGui import QImage

from desktop_app.ui.analysis import IdRole
from desktop_app.ui.cast_crops import CAST_ICON, CROP_MARGIN, CROP_PADDING, MAX_WIDE_ASPECT


def to_pil(image: QImage) -> Image.Image:
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")


def cast_icon(window: Any, entity_id: str) -> Image.Image:
    gallery = window.analysis_panel.cast_list
    item = next(
        gallery.item(i) for i in range(gallery.count()) if gallery.item(i).data(IdRole) == entity_id
    )
    pixmap = item.icon().pixmap(CAST_ICON, 1.0)
    assert (pixmap.width(), pixmap.height()) == (CAST_ICON.width(), CAST_ICON.height())
    return to_pil(pixmap.toImage())


def content_bounds(icon: Image.Image) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of the icon's pixels that are not padding."""
    padding = Image.new("RGB", icon.size, CROP_PADDING.name())
    bounds = ImageChops.difference(icon, padding).convert("L").point(lambda v: 255 * (v > 6))
    box = bounds.getbbox()
    assert box is not None, "the icon is all padding"
    return box


def photo_cut_to(photo: Path, rect: ui_sample.Rect) -> Image.Image:
    """The photo inside ``rect`` and its margin; a wide region's middle part only."""
    x1, y1, x2, y2 = rect
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    left, top, right, bottom = x1 - mx, y1 - my, x2 + mx, y2 + my
    if right - left > MAX_WIDE_ASPECT * (bottom - top):
        middle, half = (left + right) / 2, MAX_WIDE_ASPECT * (bottom - top) / 2
        left, right = middle - half, middle + half
    with Image.open(photo) as image:
        return image.convert("RGB").crop((left, top, right, bottom))


@pytest.mark.parametrize(
    ("frame", "entity_id", "shape"),
    [
        (3, "char3", "tall"),  # Grandpa Joe, standing next to Maya in photo 3
        (1, "char1", "tall"),  # Maya
        (4, "obj3", "wide"),  # the bench (4:1): its middle part
        (2, "bg2", "wide"),  # the hill, as wide as the photo
    ],
)
def test_each_cast_icon_is_the_photo_cut_to_the_box_fitted_without_stretching(
    story_tabs: Any,
    sample_photos: list[Path],
    frame: int,
    entity_id: str,
    shape: str,
) -> None:
    rect = ui_sample.SCENES[frame - 1].boxes[entity_id]
    icon = cast_icon(story_tabs, entity_id)
    left, top, right, bottom = content_bounds(icon)
    width, height = right - left, bottom - top
    expected = photo_cut_to(sample_photos[frame - 1], rect)
    # Fitted: the long side fills the icon, the short side keeps the box's proportions.
    if shape == "tall":
        assert height == CAST_ICON.height()
        assert width == pytest.approx(height * expected.width / expected.height, abs=2)
        assert (left + right) / 2 == pytest.approx(CAST_ICON.width() / 2, abs=1)
    else:
        assert width == CAST_ICON.width()
        assert height == pytest.approx(width * expected.height / expected.width, abs=2)
        assert (top + bottom) / 2 == pytest.approx(CAST_ICON.height() / 2, abs=1)
    # What is shown is the photo inside the box (not its neighbours), pixel for pixel.
    shown = icon.crop((left + 1, top + 1, right - 1, bottom - 1))
    reference = expected.resize((width, height), Image.Resampling.BILINEAR).crop(
        (1, 1, width - 1, height - 1)
    )
    mean_difference = sum(ImageStat.Stat(ImageChops.difference(shown, reference)).mean) / 3
    assert mean_difference < 12


def test_a_standing_persons_icon_does_not_show_the_person_beside_them(story_tabs: Any) -> None:
    icon = cast_icon(story_tabs, "char3")  # Grandpa Joe
    maya_coat = (0xF2, 0xC1, 0x2E)  # Maya's yellow coat, right of Grandpa Joe in photo 3
    data = icon.tobytes()
    pixels = [tuple(data[i : i + 3]) for i in range(0, len(data), 3)]
    yellow = [p for p in pixels if all(abs(c - m) < 30 for c, m in zip(p, maya_coat, strict=True))]
    assert len(yellow) < 5


@pytest.mark.parametrize(("entity_id", "what"), [("bg2", "the hill"), ("obj3", "the bench")])
def test_a_wide_region_fills_most_of_its_tile(story_tabs: Any, entity_id: str, what: str) -> None:
    icon = cast_icon(story_tabs, entity_id)
    left, top, right, bottom = content_bounds(icon)
    shown = (right - left) * (bottom - top) / (CAST_ICON.width() * CAST_ICON.height())
    assert shown >= 0.6, f"{what}: {shown:.0%} of the tile is photo, the rest grey padding"
