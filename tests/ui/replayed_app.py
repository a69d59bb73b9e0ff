"""Run as a script by the session-end tests: the desktop app as ``storyteller`` starts it (no
command), its story replayed slowly (no model). It opens ALBUM and presses Generate; at the
first token it closes the window as a user would, which asks "Stop writing?", and with that
question open (and the first-run guide: no model is set up) it prints "replayed: asking" and
the titles of the open dialogs on stderr, so the test knows when to end the session. With
``--session-request`` the app itself then gets the session manager's request, as a logout
delivers it (see ``request_session_end``).

usage: python replayed_app.py ALBUM [--session-request]
"""

from __future__ import annotations

import sys

import ui_sample
from PySide6.QtCore import SIGNAL, QTimer
from PySide6.QtGui import QSessionManager
from PySide6.QtWidgets import QApplication

from desktop_app.cli import console_main
from desktop_app.ui import startup
from desktop_app.ui.session import LiveRun

TOKEN_DELAY_S = 0.05


def request_session_end() -> None:
    """What Qt does when the session manager asks the app to save its data at logout: call the
    slots connected to ``commitDataRequest`` with the application's own ``QSessionManager``.

    PySide6 cannot emit that signal from Python (its ``QSessionManager&`` argument has no
    registered meta-type: the emit crashes), so the connected slot is called directly, after
    checking that it is connected to both of the application's session signals.
    """
    app = QApplication.instance()
    assert app is not None
    for name in ("commitDataRequest", "saveStateRequest"):
        assert app.receivers(SIGNAL(f"{name}(QSessionManager&)")) >= 1, f"{name} is not handled"
    (manager,) = app.findChildren(QSessionManager)
    ending = app.findChild(startup.SessionEnd, "sessionEnd")
    assert ending is not None
    print("replayed: session end requested", file=sys.stderr, flush=True)
    ending.session_request(manager)


def main(argv: list[str]) -> None:
    album_name, *flags = argv
    story = ui_sample.story_text()
    startup.gui_backend = lambda _settings: ui_sample.scripted_backend(story, TOKEN_DELAY_S)
    start_app = startup.start_app

    def start_and_generate(app_argv: list[str]):  # type: ignore[no-untyped-def]
        window = start_app(app_argv)
        assert window is not None
        window.session.open_album(window.library.album(album_name))
        announced: list[bool] = []

        def asking() -> None:  # runs inside the question's own event loop
            dialogs = [w.windowTitle() for w in QApplication.topLevelWidgets() if w.isVisible()]
            print(f"replayed: asking; open: {dialogs}", file=sys.stderr, flush=True)
            if "--session-request" in flags:
                QTimer.singleShot(0, request_session_end)

        def on_live(live: LiveRun) -> None:
            if live.tokens and not announced:
                announced.append(True)
                QTimer.singleShot(0, window.close)  # asks "Stop writing?" and waits
                QTimer.singleShot(300, asking)

        window.session.live_story_changed.connect(on_live)
        QTimer.singleShot(200, window.generation.generate)
        return window

    startup.start_app = start_and_generate
    sys.argv = ["storyteller"]
    console_main()


if __name__ == "__main__":
    main(sys.argv[1:])
