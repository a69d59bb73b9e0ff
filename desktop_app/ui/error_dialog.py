"""The one place where exceptions become what the user sees.

``StorytellerError`` messages already say what failed and what to do; they are shown as they
are. Anything else is a bug: the user gets a short apology with the details folded away, and the
traceback goes to the log. Uncaught exceptions in any thread end up here too, so nothing crashes
the app.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from desktop_app.errors import StorytellerError
from desktop_app.ui.gui_words import gui_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorMessage:
    """What an error dialog shows."""

    title: str
    text: str
    details: str  # the traceback for unexpected errors, "" for problems the user can fix
    expected: bool  # True for StorytellerError and OS errors the user can act on


def describe_error(err: BaseException, details: str = "", *, action: str = "") -> ErrorMessage:
    """Turn an exception into a message; ``action`` says what was being done ("Importing photos")."""
    title = f"{action} failed" if action else "Storyteller"
    if isinstance(err, (StorytellerError, *_other_expected_errors())):
        return ErrorMessage(title, gui_text(str(err)), "", True)
    if isinstance(err, OSError):
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        reason = err.strerror or str(err)
        return ErrorMessage(
            title,
            f"{reason}{where}. Check that the file or folder exists and is writable.",
            "",
            True,
        )
    text = (
        f"Something went wrong inside Storyteller: {type(err).__name__}: {err}. "
        "Your albums and stories are safe. Please report this with the details below."
    )
    if not details:
        details = "".join(traceback.format_exception(err))
    return ErrorMessage(title, text, details, False)


def _other_expected_errors() -> tuple[type[BaseException], ...]:
    """Error bases of packages outside ``desktop_app`` whose messages are written for users."""
    try:
        from convert.errors import ConversionError
    except ImportError:
        return ()
    return (ConversionError,)


def show_error(
    parent: QWidget | None, err: BaseException, details: str = "", *, action: str = ""
) -> ErrorMessage:
    """Show ``err`` in a dialog (non-blocking: the dialog is window-modal, not a nested loop)."""
    message = describe_error(err, details, action=action)
    if not message.expected:
        logger.error("%s\n%s", message.text, message.details)
    box = QMessageBox(
        QMessageBox.Icon.Warning if message.expected else QMessageBox.Icon.Critical,
        message.title,
        message.text,
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setObjectName("errorDialog")
    if message.details:
        box.setDetailedText(message.details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    _open_dialogs.append(box)
    box.finished.connect(lambda _result, b=box: _forget_dialog(b))
    return message


_open_dialogs: list[QMessageBox] = []


def _forget_dialog(box: QMessageBox) -> None:
    if box in _open_dialogs:
        _open_dialogs.remove(box)


def open_error_dialogs() -> list[QMessageBox]:
    """Error dialogs currently shown (tests use this to see what the user was told)."""
    return list(_open_dialogs)


class _ExceptionRelay(QObject):
    """Carries exceptions from any thread to the GUI thread."""

    raised = Signal(object, str)


_relay: _ExceptionRelay | None = None


def install_excepthooks(parent_for_dialogs: QWidget | None = None) -> None:
    """Route uncaught exceptions from every thread to ``show_error`` instead of crashing."""
    global _relay
    if _relay is not None:
        return
    _relay = _ExceptionRelay()
    app = QApplication.instance()
    if app is not None:
        _relay.moveToThread(app.thread())

    def show(err: BaseException, details: str) -> None:
        window = parent_for_dialogs or QApplication.activeWindow()
        show_error(window, err, details)

    _relay.raised.connect(show)

    def sys_hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        details = "".join(traceback.format_exception(kind, value, tb))
        logger.error("uncaught exception\n%s", details)
        assert _relay is not None
        # Deferred: the hook may run inside a Qt virtual method, where a dialog must not open.
        QTimer.singleShot(0, lambda: _relay.raised.emit(value, details) if _relay else None)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        details = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        logger.error("uncaught exception in thread %s\n%s", args.thread, details)
        if _relay is not None:
            _relay.raised.emit(args.exc_value, details)

    sys.excepthook = sys_hook
    threading.excepthook = thread_hook


def uninstall_excepthooks() -> None:
    """Put Python's own hooks back (tests; the app keeps its hooks until it exits)."""
    global _relay
    sys.excepthook = sys.__excepthook__
    threading.excepthook = threading.__excepthook__
    if _relay is not None:
        _relay.deleteLater()
        _relay = None
