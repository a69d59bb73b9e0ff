"""The photo panel: one photo, with one rectangle item per entity box drawn over it.

Scene coordinates are the pixels of the original photo (after EXIF rotation), whatever the
size of the pixmap actually loaded, so a box only needs one mapping (model pixels of the prepared
image -> original pixels); the view's transform takes care of any window size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from desktop_app.ui.photos import load_photo

# Photos are displayed from a pixmap no larger than this on its long side (memory, speed).
DISPLAY_MAX_SIDE = 2048


@dataclass(frozen=True)
class BoxOverlay:
    """A box to draw: in original-photo pixels, with the entity it belongs to."""

    entity_id: str
    label: str
    rect: tuple[float, float, float, float]  # x1, y1, x2, y2 in original pixels
    color: str  # "#rrggbb"


def read_photo(path: Path, max_side: int = DISPLAY_MAX_SIDE) -> tuple[QPixmap, QSize]:
    """``path`` upright, fitting ``max_side``, as a pixmap, and the full upright size."""
    image, full = load_photo(path, max_side)
    return (QPixmap(), QSize()) if image.isNull() else (QPixmap.fromImage(image), full)


class BoxItem(QGraphicsRectItem):
    """The rectangle of one entity; clicking it asks the story to select that entity's spans."""

    def __init__(self, overlay: BoxOverlay, view: PhotoView) -> None:
        x1, y1, x2, y2 = overlay.rect
        super().__init__(QRectF(x1, y1, x2 - x1, y2 - y1))
        self.overlay = overlay
        self._view = view
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{overlay.label} ({overlay.entity_id})")

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self._view.box_clicked.emit(self.overlay.entity_id)
        event.accept()


class PhotoView(QGraphicsView):
    """Shows one photo fitted to the widget and the boxes of the entities in focus."""

    box_clicked = Signal(str)  # entity id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("photoView")
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setBackgroundBrush(QBrush(QColor("#2b2b2b")))
        self.setMinimumSize(200, 150)
        self.photo_item: QGraphicsPixmapItem | None = None
        self.photo_path: Path | None = None
        self.failed_path: Path | None = None  # the photo the view last failed to show
        self.original_size: tuple[int, int] = (0, 0)
        self._boxes: list[BoxItem] = []
        self._labels: list[QGraphicsSimpleTextItem | QGraphicsRectItem] = []
        self._placeholder = self._scene.addSimpleText("")
        self._placeholder.setBrush(QBrush(QColor("#dddddd")))
        self._hint = ""
        self.set_placeholder("Hover a highlighted word in the story to see who or what it means.")

    def set_placeholder(self, text: str) -> None:
        """The text shown while no photo is."""
        self._hint = text
        self._show_text(text)

    def _show_text(self, text: str) -> None:
        self._placeholder.setText(text)
        self._placeholder.setVisible(self.photo_item is None)
        if self.photo_item is None:
            self._scene.setSceneRect(self._placeholder.boundingRect().adjusted(-20, -20, 20, 20))

    def clear_photo(self) -> None:
        """Show no photo (and no boxes)."""
        self.clear_boxes()
        if self.photo_item is not None:
            self._scene.removeItem(self.photo_item)
            self.photo_item = None
        self.photo_path = None
        self.failed_path = None
        self.original_size = (0, 0)
        self._placeholder.setText(self._hint)  # not a failure message about an earlier photo
        self._placeholder.setVisible(True)
        self._scene.setSceneRect(self._placeholder.boundingRect().adjusted(-20, -20, 20, 20))
        self._fit()

    def set_photo(self, path: Path) -> bool:
        """Show ``path``; False (and a placeholder) when it cannot be read."""
        if self.photo_item is not None and self.photo_path == path:
            return True
        self.clear_photo()
        # The view draws the photo scaled to device pixels (its transform and the screen's
        # ratio together), so only the decoded size matters for sharpness: more on high-DPI
        # screens. The pixmap stays untagged: scene units are original-photo pixels.
        ratio = min(2.0, max(1.0, self.devicePixelRatioF()))
        pixmap, full = read_photo(path, int(DISPLAY_MAX_SIDE * ratio))
        if pixmap.isNull():
            self._show_text(f"{path.name} cannot be shown: it is missing or not an image.")
            self.failed_path = path
            return False
        item = QGraphicsPixmapItem(pixmap)
        item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        item.setScale(full.width() / pixmap.width())
        item.setZValue(0)
        self._scene.addItem(item)
        self.photo_item = item
        self.photo_path = path
        self.original_size = (full.width(), full.height())
        self._placeholder.setVisible(False)
        self._scene.setSceneRect(QRectF(0, 0, full.width(), full.height()))
        self._fit()
        return True

    def clear_boxes(self) -> None:
        """Remove every drawn box and label."""
        for item in [*self._boxes, *self._labels]:
            self._scene.removeItem(item)
        self._boxes.clear()
        self._labels.clear()

    def show_boxes(self, overlays: list[BoxOverlay]) -> None:
        """Replace the drawn boxes by ``overlays`` (original-photo pixels)."""
        self.clear_boxes()
        if self.photo_item is None:
            return
        scale = max(self.original_size) / 600 if max(self.original_size) else 1.0
        for overlay in overlays:
            item = BoxItem(overlay, self)
            color = QColor(overlay.color)
            pen = QPen(color, 3 * scale)
            pen.setCosmetic(False)
            item.setPen(pen)
            fill = QColor(color)
            fill.setAlpha(40)
            item.setBrush(QBrush(fill))
            item.setZValue(1)
            self._scene.addItem(item)
            self._boxes.append(item)
            text_label = overlay.label if len(overlay.label) <= 26 else overlay.label[:25] + "…"
            label = QGraphicsSimpleTextItem(text_label)
            font = QFont()
            font.setPixelSize(max(10, int(13 * scale)))
            font.setBold(True)
            label.setFont(font)
            label.setBrush(QBrush(QColor("white")))
            x1, y1, _x2, _y2 = overlay.rect
            text = label.boundingRect()
            pad = 3 * scale
            top = y1 - text.height() - 2 * pad
            if top < 0:  # no room above the box: put the label just inside it
                top = y1
            width = text.width() + 2 * pad
            left = max(0.0, min(x1, self.original_size[0] - width))  # keep it on the photo
            background = QGraphicsRectItem(QRectF(left, top, width, text.height() + 2 * pad))
            background.setBrush(QBrush(color))
            background.setPen(QPen(Qt.PenStyle.NoPen))
            background.setZValue(2)
            label.setPos(left + pad, top + pad)
            label.setZValue(3)
            self._scene.addItem(background)
            self._scene.addItem(label)
            self._labels.extend([background, label])

    def box_items(self) -> list[BoxItem]:
        """The rectangle items drawn now, one per box."""
        return list(self._boxes)

    def _fit(self) -> None:
        rect = self._scene.sceneRect()
        if rect.isValid():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event: object) -> None:  # type: ignore[override]
        super().showEvent(event)  # type: ignore[arg-type]
        self._fit()
