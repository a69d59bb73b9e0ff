"""Keeping the screen on while the story is presented, where the platform lets an app ask.

- Linux (and other freedesktop systems): ``org.freedesktop.ScreenSaver.Inhibit`` on the session
  D-Bus, which KDE, GNOME, Xfce and others answer, over a connection of its own that is closed to
  release it (the idle-inhibit spec ends an application's inhibitions when it disconnects). Without a session bus or a service that answers
  (a bare X server, a minimal window manager) the screen may still blank: ``KeepAwake.why_not``
  says so and the presentation tells the user.
- Windows: ``SetThreadExecutionState(ES_CONTINUOUS | ES_DISPLAY_REQUIRED)``, cleared on release.
- macOS: ``caffeinate -d -w PID`` (the system's own tool): the display stays on while our
  process lives; it is ended on release.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage

logger = logging.getLogger(__name__)

_APP = "Storyteller"
_connection_numbers = itertools.count(1)
_REASON = "Presenting a story"


@dataclass
class KeepAwake:
    """A held request to keep the screen on; ``how`` says by what means, ``why_not`` why none
    could be made (then ``held`` is False). Call ``release()`` when the presentation ends."""

    how: str = ""
    why_not: str = ""
    bus_name: str = ""  # D-Bus: the unique name of the connection that holds the inhibition
    _release: Any = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        """Let the screen sleep again (safe to call twice)."""
        release, self._release = self._release, None
        if release is not None:
            try:
                release()
            except Exception:  # the screen saver going away must not break closing
                logger.exception("could not release the screen-saver inhibition")


def keep_screen_awake(bus_address: str | None = None) -> KeepAwake:
    """Ask the platform to keep the screen on; never raises. ``bus_address`` is the D-Bus to
    ask on freedesktop systems (default: the session bus)."""
    try:
        if sys.platform == "win32":
            return _windows()
        if sys.platform == "darwin":
            return _macos()
        return _freedesktop(bus_address)
    except Exception as err:  # a platform quirk must not stop the presentation
        logger.exception("keeping the screen awake failed")
        return KeepAwake(why_not=f"the system refused ({err})")


def _windows() -> KeepAwake:
    import ctypes

    es_continuous, es_display_required = 0x80000000, 0x00000002
    kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
    if not kernel.SetThreadExecutionState(es_continuous | es_display_required):
        return KeepAwake(why_not="Windows refused SetThreadExecutionState")
    return KeepAwake(
        how="SetThreadExecutionState",
        _release=lambda: kernel.SetThreadExecutionState(es_continuous),
    )


def _macos() -> KeepAwake:
    try:
        process = subprocess.Popen(
            ["/usr/bin/caffeinate", "-d", "-w", str(os.getpid())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as err:
        return KeepAwake(why_not=f"caffeinate could not start ({err})")

    def stop() -> None:
        process.terminate()
        process.wait(timeout=5)

    return KeepAwake(how="caffeinate", _release=stop)


def _freedesktop(bus_address: str | None) -> KeepAwake:
    # A connection of its own, closed to release: the idle-inhibit spec ends an application's
    # inhibitions when it disconnects from the bus (KDE's and GNOME's services do). UnInhibit
    # is not used: its cookie is a D-Bus uint32, which PySide6 cannot send (a Python int goes
    # as int32, and the services refuse the call).
    name = f"storyteller-keep-awake-{next(_connection_numbers)}"
    if bus_address is None:
        bus = QDBusConnection.connectToBus(QDBusConnection.BusType.SessionBus, name)
    else:
        bus = QDBusConnection.connectToBus(bus_address, name)

    def disconnect() -> None:
        QDBusConnection.disconnectFromBus(name)

    if not bus.isConnected():
        disconnect()
        return KeepAwake(why_not="there is no desktop session bus to ask")
    saver = QDBusInterface(
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        bus,
    )
    if not saver.isValid():
        disconnect()
        return KeepAwake(why_not="the desktop offers no screen-saver service to ask")
    reply = saver.call("Inhibit", _APP, _REASON)
    if reply.type() != QDBusMessage.MessageType.ReplyMessage or not reply.arguments():
        disconnect()
        return KeepAwake(why_not=f"the screen saver refused: {reply.errorMessage()}")
    return KeepAwake(
        how="org.freedesktop.ScreenSaver", bus_name=bus.baseService(), _release=disconnect
    )
