"""The cast gallery's pictures: each character or object cut out of a photo along its box.

Crops are cut from the frame where the entity's box is largest and fitted, without changing
their shape, into a square icon with a neutral padding. A box much wider than tall (a hill, a
bench, a beach) is cut to its middle part, at most ``MAX_WIDE_ASPECT`` times as wide as tall,
so that its tile shows the place rather than a thin strip between grey bands.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from desktop_app.app.stored_story import FrameGeometry, box_on_photo
from desktop_app.story.model import Box, Story
from desktop_app.ui.photo_view import read_photo

CAST_ICON = QSize(112, 112)
CROP_MARGIN = 0.04  # of the box's width (left and right) and height (top and bottom)
CROP_PADDING = QColor("#e4e4e4")  # fills the icon around a crop that is not square
MAX_WIDE_ASPECT = 1.6  # a wider box shows its middle part, this many times as wide as tall

# photo path -> (its decoded pixmap, its full upright size): each photo is decoded once per fill
PhotoCache = dict[Path, tuple[QPixmap, tuple[int, int]]]


def fitted_crop(
    pixmap: QPixmap,
    original: tuple[int, int],
    box: tuple[float, float, float, float],
    icon: QSize,
    device_ratio: float = 1.0,
) -> QPixmap | None:
    """The part of the photo inside ``box`` (original-photo pixels, plus a small margin), scaled
    to fit ``icon`` without changing its shape and centred on a neutral square; None when the
    box is (nearly) empty.

    The result has ``icon`` × ``device_ratio`` pixels and says so (``devicePixelRatio``), so a
    high-DPI screen shows it at full resolution instead of enlarging a small icon.

    ``pixmap`` may be a downscaled decode of the photo, ``original`` its full upright size. The
    crop is cut to the box only: a square around a tall box would show the people beside it.
    """
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    scale = pixmap.width() / original[0]
    rect = QRectF(
        (x1 - mx) * scale, (y1 - my) * scale, (x2 - x1 + 2 * mx) * scale, (y2 - y1 + 2 * my) * scale
    )
    if rect.width() > MAX_WIDE_ASPECT * rect.height():  # a wide region: its middle part
        centre = rect.center()
        rect.setWidth(MAX_WIDE_ASPECT * rect.height())
        rect.moveCenter(centre)
    source = rect.intersected(QRectF(pixmap.rect()))
    if source.width() < 2 or source.height() < 2:
        return None
    fit = min(icon.width() / source.width(), icon.height() / source.height())
    target = QRectF(0, 0, source.width() * fit, source.height() * fit)
    target.moveCenter(QRectF(0, 0, icon.width(), icon.height()).center())
    result = QPixmap(icon * device_ratio)
    result.setDevicePixelRatio(device_ratio)
    result.fill(CROP_PADDING)
    painter = QPainter(result)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    painter.drawPixmap(target, pixmap, source)
    painter.end()
    return result


def entity_crop(
    story: Story,
    entity_id: str,
    frame_photos: Mapping[int, FrameGeometry],
    device_ratio: float,
    cache: PhotoCache,
) -> QIcon | None:
    """A crop of the entity from the frame where its box is largest (None: no box in a frame
    that has a photo, or the photo cannot be read)."""
    boxes = story.boxes_for(entity_id)
    best: tuple[float, int, Box] | None = None
    for frame, box in boxes.items():
        area = max(0.0, box.x2 - box.x1) * max(0.0, box.y2 - box.y1)
        if frame in frame_photos and (best is None or area > best[0]):
            best = (area, frame, box)
    if best is None:
        return None
    _area, frame, box = best
    photo = frame_photos[frame]
    if photo.path not in cache:
        # Decoded larger on high-DPI screens so that small boxes still give sharp crops.
        pixmap, full = read_photo(photo.path, max_side=int(1024 * min(2.0, max(1.0, device_ratio))))
        if pixmap.isNull():
            return None
        cache[photo.path] = (pixmap, (full.width(), full.height()))
    pixmap, original = cache[photo.path]
    prepared = photo.prepared_size or original
    crop = fitted_crop(
        pixmap, original, box_on_photo(box, prepared, original), CAST_ICON, device_ratio
    )
    return None if crop is None else QIcon(crop)
