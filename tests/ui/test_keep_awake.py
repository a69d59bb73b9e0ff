"""Keeping the screen on while presenting, on a freedesktop system: the screen saver on a real
(private) D-Bus is asked to inhibit and told to stop with its cookie; without a bus or without a
screen-saver service, the presentation is told why not."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtDBus import QDBusConnection

from desktop_app.ui.keep_awake import keep_screen_awake

FAKE_SCREENSAVER = Path(__file__).with_name("fake_screensaver.py")
LINE_TIMEOUT_S = 20


def _line(process: subprocess.Popen[str]) -> str:
    """The next line ``process`` prints; fails the test after a while instead of hanging."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], LINE_TIMEOUT_S)
    assert ready, f"no answer from the screen saver within {LINE_TIMEOUT_S} s"
    return process.stdout.readline().strip()


def _wait_gone(observer: Any, name: str) -> None:
    """Wait until ``name`` has left the bus (the daemon sees a closed connection soon after)."""
    deadline = time.monotonic() + LINE_TIMEOUT_S
    while observer.isServiceRegistered(name).value():
        assert time.monotonic() < deadline, f"{name} is still on the bus"
        time.sleep(0.02)


@pytest.fixture
def private_bus(qapp: Any) -> Iterator[str]:
    """The address of a session bus of the test's own (``dbus-daemon``, which .ci/run
    installs); stopped at the end."""
    daemon_path = shutil.which("dbus-daemon")
    if daemon_path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dbus-daemon is missing; CI must run this test (.ci/run installs it)")
        pytest.skip("dbus-daemon is not installed: apt-get install dbus-daemon")
    daemon = subprocess.Popen(
        [daemon_path, "--session", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        yield daemon.stdout.readline().strip()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the freedesktop way")
def test_the_screen_saver_is_asked_to_inhibit_and_released_with_its_cookie(
    private_bus: str,
) -> None:
    saver = subprocess.Popen(
        [sys.executable, str(FAKE_SCREENSAVER), private_bus], stdout=subprocess.PIPE, text=True
    )
    try:
        assert _line(saver) == "ready"
        observer = QDBusConnection.connectToBus(private_bus, "test-observer").interface()
        awake = keep_screen_awake(private_bus)
        assert awake.held and awake.how == "org.freedesktop.ScreenSaver", awake.why_not
        assert _line(saver) == "Inhibit Storyteller Presenting a story -> 4711"
        second = keep_screen_awake(private_bus)  # a second presentation holds its own
        assert _line(saver) == "Inhibit Storyteller Presenting a story -> 4712"
        assert observer.isServiceRegistered(awake.bus_name).value()
        # Released by leaving the bus: the idle-inhibit spec ends an application's
        # inhibitions when it disconnects (UnInhibit's uint32 cookie is beyond PySide6).
        awake.release()
        _wait_gone(observer, awake.bus_name)
        assert observer.isServiceRegistered(second.bus_name).value()
        assert not awake.held
        awake.release()  # twice is harmless
        second.release()
        _wait_gone(observer, second.bus_name)
    finally:
        QDBusConnection.disconnectFromBus("test-observer")
        saver.terminate()
        saver.wait(timeout=10)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="the freedesktop way")
def test_without_a_screen_saver_or_a_bus_it_says_why_not(private_bus: str) -> None:
    awake = keep_screen_awake(private_bus)
    assert not awake.held
    assert awake.why_not == "the desktop offers no screen-saver service to ask"
    awake = keep_screen_awake("unix:path=/nonexistent/bus")
    assert not awake.held and awake.why_not == "there is no desktop session bus to ask"
