"""Start the desktop application."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSize, QSocketNotifier, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QIcon, QSessionManager
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


# What ends the app as its window's close does: a logout's or a service manager's SIGTERM, a
# closed terminal's SIGHUP, Ctrl-C in the terminal that started it.
END_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)


class SignalBridge(QObject):
    """Unix signals delivered inside the Qt event loop.

    Python runs a signal handler only when the interpreter gets control, which ``app.exec()``
    never gives it while idle. So the handlers do nothing themselves: ``signal.set_wakeup_fd``
    writes each signal's number to a socket pair, and a ``QSocketNotifier`` on the other end
    wakes the loop, which emits ``received`` with it (the self-pipe trick).
    """

    received = Signal(int)

    def __init__(self, signums: tuple[int, ...] = END_SIGNALS, parent: QObject | None = None):
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        self._previous = {signum: signal.signal(signum, self._noted) for signum in signums}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    @staticmethod
    def _noted(_signum: int, _frame: object) -> None:
        """The wakeup socket carries the signal; nothing else may happen in a handler."""

    def _drain(self) -> None:
        try:
            data = self._reader.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            self.received.emit(signum)

    def close(self) -> None:
        """Give the signals back to their previous handlers."""
        self._notifier.setEnabled(False)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


class SessionEnd(QObject):
    """Closes ``window`` as its own close does, without a question, when the session ends: the
    session manager's requests (logout: ``commitDataRequest``, ``saveStateRequest``) and
    SIGTERM, SIGHUP or Ctrl-C (through a ``SignalBridge``, on the main thread only)."""

    def __init__(self, app: QGuiApplication, window: MainWindow) -> None:
        super().__init__(app)
        self.setObjectName("sessionEnd")
        self._window = window
        app.commitDataRequest.connect(self.session_request)
        app.saveStateRequest.connect(self.session_request)
        self.bridge: SignalBridge | None = None
        with contextlib.suppress(ValueError):  # not the main thread: no signals here
            self.bridge = SignalBridge(parent=self)
            self.bridge.received.connect(self.signal_received)

    def session_request(self, _manager: QSessionManager) -> None:
        # Never ask: at logout nobody answers (so ``allowsInteraction`` is never called).
        self._window.end_session("the desktop session is ending")

    def signal_received(self, signum: int) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        self._window.end_session(f"{name} received")

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None


def run_app(argv: list[str]) -> int:
    """Create the QApplication and the main window; return the exit code of the event loop.

    Logout, SIGTERM, SIGHUP and Ctrl-C close the window as its close does (``end_session``),
    and the exit code is then 0, as after any close.
    """
    window = start_app(argv)
    app = QApplication.instance()
    assert app is not None
    ending = SessionEnd(app, window) if window is not None else None
    try:
        exit_code = app.exec()  # without a window it shows the error message until it is closed
    finally:
        if ending is not None:
            ending.close()
    return exit_code if window is not None else 1
