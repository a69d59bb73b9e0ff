"""A photo at full size in a window of its own (double-click or Enter in the strip), as photo
apps open a photo: as large as the screen allows, Esc closes it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import QDialog, QVBoxLayout, QWidget

from desktop_app.ui.photo_view import PhotoView

SCREEN_SHARE = 0.9  # of the available screen the window takes at most


class PhotoWindow(QDialog):
    """One photo, upright, fitted to a window that takes most of the screen."""

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("photoWindow")
        self.setWindowTitle(path.name)
        self.setModal(False)
        self.view = PhotoView(self)
        self.view.setAccessibleName(f"Photo {path.name}")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            area = screen.availableGeometry()
            self.resize(int(area.width() * SCREEN_SHARE), int(area.height() * SCREEN_SHARE))
        self.view.set_photo(path)  # an unreadable photo: the view says so
        QShortcut(QKeySequence.StandardKey.Close, self, activated=self.close)


def open_full_size(path: Path, parent: QWidget | None = None) -> PhotoWindow:
    """Open ``path`` in a photo window (deleted when closed)."""
    window = PhotoWindow(path, parent)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.show()
    return window
