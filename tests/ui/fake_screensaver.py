"""A stand-in for the desktop's screen saver on a private D-Bus, for ``test_keep_awake``.

    python fake_screensaver.py BUS_ADDRESS

Owns ``org.freedesktop.ScreenSaver`` on that bus and prints what happens on stdout, one line
each: "ready" once registered, "Inhibit APP REASON -> COOKIE" for each request, "UnInhibit
COOKIE" when asked to end one. It runs until it is terminated.
"""

from __future__ import annotations

import itertools
import sys

from PySide6.QtCore import ClassInfo, QCoreApplication, QObject, Slot
from PySide6.QtDBus import QDBusConnection

FIRST_COOKIE = 4711


@ClassInfo(**{"D-Bus Interface": "org.freedesktop.ScreenSaver"})
class ScreenSaver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self._cookies = itertools.count(FIRST_COOKIE)

    @Slot(str, str, result="uint")
    def Inhibit(self, app: str, reason: str) -> int:
        cookie = next(self._cookies)
        print(f"Inhibit {app} {reason} -> {cookie}", flush=True)
        return cookie

    @Slot("uint")
    def UnInhibit(self, cookie: int) -> None:
        print(f"UnInhibit {cookie}", flush=True)


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    bus = QDBusConnection.connectToBus(sys.argv[1], "fake-screensaver")
    saver = ScreenSaver()
    if not bus.registerService("org.freedesktop.ScreenSaver") or not bus.registerObject(
        "/org/freedesktop/ScreenSaver", saver, QDBusConnection.RegisterOption.ExportAllSlots
    ):
        print(f"cannot register: {bus.lastError().message()}", flush=True)
        return 1
    print("ready", flush=True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
