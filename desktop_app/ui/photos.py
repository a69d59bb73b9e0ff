"""Photos for the screen and the PDF, decoded by the app's one photo decoder (Pillow, in
``desktop_app.imaging``) and handed to Qt as a ``QImage``.

Qt's own readers are not used for photos: Pillow reads HEIC (with pi-heif) where Qt lacks a
plugin, and one decoder means the strip, the story, the photo view, the cast and the exports show
the same upright, flattened pixels. ``QImage`` (not ``QPixmap``) is safe off the GUI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from desktop_app.imaging import PhotoUnreadableError, fitted_image

logger = logging.getLogger(__name__)


def load_photo(path: Path, max_side: int) -> tuple[QImage, QSize]:
    """``path`` upright, fitting ``max_side`` pixels, and the size of the whole upright photo;
    a null image and an invalid size when it cannot be read."""
    try:
        fitted = fitted_image(path, max_side, purpose="to show it")
    except PhotoUnreadableError as err:
        logger.info("%s", err)
        return QImage(), QSize()
    image = fitted.image
    data = image.tobytes("raw", "RGB")
    qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888)
    return qimage.copy(), QSize(*fitted.full_size)  # copy: the QImage must own its pixels


def load_thumbnail(path: Path, width: int) -> QImage:
    """The photo scaled to ``width`` (device pixels), upright; null if unreadable."""
    image, _full = load_photo(path, 3 * width)
    if image.isNull():
        return image
    return image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
