"""Start the desktop application."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from desktop_app.app.backends import (
    NoModelError,
    backend_from_settings,
    describe_settings_backend,
    model_configured,
)
from desktop_app.app.model_download import paused_download
from desktop_app.app.settings import Settings, load_settings, open_library
from desktop_app.engine.api import StoryBackend
from desktop_app.errors import StorytellerError
from desktop_app.ui.error_dialog import install_excepthooks, show_error

if TYPE_CHECKING:
    from desktop_app.ui.main_window import MainWindow

logger = logging.getLogger(__name__)

# Package data written by packaging/icons/make_icons.py: the same files the Linux packages install
# as hicolor icons, so the window, the taskbar and the menu entry show one picture.
ICON_DIR = Path(__file__).resolve().parent / "icons"


def app_icon() -> QIcon:
    """Storyteller's icon with every size that is installed (16 to 512 px), so Qt picks a sharp
    one for the title bar, the taskbar and high-DPI screens; a null icon if the files are
    missing (Qt then shows its default)."""
    icon = QIcon()
    for path in sorted(ICON_DIR.glob("storyteller-*.png")):
        size = int(path.stem.rsplit("-", 1)[1])
        icon.addFile(str(path), QSize(size, size))
    if icon.isNull():
        logger.warning("no window icon: %s has no storyteller-*.png", ICON_DIR)
    return icon


def create_application(argv: list[str]) -> QApplication:
    """The QApplication (reused if one exists), set up for sharp rendering on high-DPI screens."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication([sys.argv[0] if sys.argv else "storyteller", *argv])
    app.setApplicationName("Storyteller")
    app.setApplicationDisplayName("Storyteller")
    app.setOrganizationName("Storyteller")
    app.setDesktopFileName("storyteller")
    # Without it a pip-installed app shows a generic window and taskbar icon (the bundles also
    # embed the icon in the executable, but X11 and Wayland windows take it from here).
    app.setWindowIcon(app_icon())
    return app


def gui_backend(settings: Settings | None) -> StoryBackend:
    """The story backend the settings describe (may read model files: call it in a worker);
    without a model, the message says where in the app to set one up."""
    try:
        return backend_from_settings(settings if settings is not None else Settings())
    except NoModelError as err:  # its own message speaks of command-line options
        raise StorytellerError(
            "No model is set up yet: use Help → First-run guide to locate or convert one, or "
            "File → Settings to choose the model files or a server"
        ) from err


def build_main_window(settings: Settings | None = None) -> MainWindow:
    """Open the library the settings name and create the main window (not shown)."""
    from desktop_app.ui.main_window import MainWindow

    settings = settings if settings is not None else load_settings()
    library = open_library(settings)
    window = MainWindow(library, gui_backend, settings=settings)
    window.status_bar.set_backend(describe_settings_backend(settings), _model_name(settings))
    return window


def _model_name(settings: Settings) -> str:
    if settings.server_url:
        return settings.server_model or ""
    if settings.model_path:
        return settings.model_path.name
    try:
        from desktop_app.engine.model_files import default_model

        found = default_model()
    except Exception:
        return ""
    return found.name if found is not None else ""


def first_run_guide_wanted(settings: Settings) -> bool:
    """Open the first-run guide at start: no model is set up, or a paused model download
    waits (the guide offers Resume or Discard; it never resumes on its own)."""
    return not model_configured(settings) or paused_download() is not None


def start_app(argv: list[str]) -> MainWindow | None:
    """Set up the application and show the main window (and the first-run guide if no model
    is set up or a model download is paused); return the window, or None when the library cannot be opened (the message is
    shown)."""
    create_application(argv)
    install_excepthooks()
    try:
        settings = load_settings()
        window = build_main_window(settings)
    except StorytellerError as err:
        show_error(None, err, action="Opening the library")
        return None
    window.show()
    if first_run_guide_wanted(settings):
        QTimer.singleShot(0, window.open_first_run_guide)
    return window


def run_app(argv: list[str]) -> int:
    """Create the QApplication and the main window; return the exit code of the event loop."""
    window = start_app(argv)
    app = QApplication.instance()
    assert app is not None
    exit_code = app.exec()  # without a window it shows the error message until it is closed
    return exit_code if window is not None else 1
