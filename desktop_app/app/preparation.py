"""When photos are prepared in the background, before Generate: the policy, free of Qt.

While an album is open, the embedded engine can encode its photos and read the whole prompt
(``LlamaCppBackend.prepare``), so that Generate evaluates only the prompt's last token again, as
Generate again does. That costs memory (the model is loaded) and power, so it happens only when:

- the setting *Prepare photos in the background* is on, and the backend can prepare (the
  embedded engine: a server caches prompts itself, and nothing changes with one);
- the computer is not running on battery, where the platform tells (Linux: /sys/class/
  power_supply; Windows: GetSystemPowerStatus; macOS: ``pmset -g batt``; elsewhere, or where
  these say nothing, it is taken to be on mains power);
- the model is loaded already, or the run's estimated memory fits in the memory free now with a
  margin of ``MEMORY_MARGIN_BYTES`` (and a quarter of the estimate) to spare: preparing must not
  push the computer into swapping while the user works in another program.

A loaded model nobody used for ``IDLE_RELEASE_MINUTES`` is released (the prompt states stay in
the caches, so the next run restores rather than reads).
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from desktop_app.engine.api import PhaseEvent, ShouldStop, StoryRequest

logger = logging.getLogger(__name__)

IDLE_RELEASE_MINUTES = 10
MEMORY_MARGIN_BYTES = 1 << 30
POWER_SUPPLY = Path("/sys/class/power_supply")


def can_prepare(backend: object) -> bool:
    """Whether ``backend`` prepares runs ahead (the embedded engine does; a server does not)."""
    return callable(getattr(backend, "prepare", None))


def prepare(
    backend: object, request: StoryRequest, should_stop: ShouldStop
) -> Iterator[PhaseEvent]:
    """``backend``'s preparation of ``request`` (nothing for a backend that cannot prepare)."""
    if can_prepare(backend):
        yield from backend.prepare(request, should_stop=should_stop)  # type: ignore[attr-defined]


def release(backend: object) -> None:
    """Give the memory of ``backend``'s loaded model back (it loads again on the next run)."""
    free = getattr(backend, "release", None)
    if callable(free):
        free()


def on_battery() -> bool:
    """True when the platform says the computer runs on battery now; False otherwise, or when
    it does not say (see the module docstring for where it can)."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_on_battery(POWER_SUPPLY)
        if sys.platform == "win32":
            return _windows_on_battery()
        if sys.platform == "darwin":
            out = subprocess.run(
                ["pmset", "-g", "batt"], capture_output=True, text=True, timeout=2, check=False
            ).stdout
            return "Battery Power" in out
    except (OSError, subprocess.SubprocessError, ValueError):
        logger.debug("cannot tell whether this computer runs on battery", exc_info=True)
    return False


def _linux_on_battery(root: Path) -> bool:
    """On battery: a battery discharging and no mains adapter online."""
    if not root.is_dir():
        return False
    discharging = mains = False
    for supply in root.iterdir():
        kind = _read(supply / "type")
        if kind == "Battery" and _read(supply / "status") == "Discharging":
            discharging = True
        elif kind in ("Mains", "USB") and _read(supply / "online") == "1":
            mains = True
    return discharging and not mains


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _windows_on_battery() -> bool:
    class PowerStatus(ctypes.Structure):
        _fields_ = [
            ("ACLineStatus", ctypes.c_ubyte),
            ("BatteryFlag", ctypes.c_ubyte),
            ("BatteryLifePercent", ctypes.c_ubyte),
            ("SystemStatusFlag", ctypes.c_ubyte),
            ("BatteryLifeTime", ctypes.c_ulong),
            ("BatteryFullLifeTime", ctypes.c_ulong),
        ]

    status = PowerStatus()
    if not ctypes.windll.kernel32.GetSystemPowerStatus(ctypes.byref(status)):  # type: ignore[attr-defined]
        return False
    return status.ACLineStatus == 0  # 0 offline, 1 online, 255 unknown


def available_memory_bytes() -> int | None:
    """Memory free for a new allocation now (Linux: MemAvailable), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def why_not(*, enabled: bool, backend_can: bool, loaded: bool, memory_bytes: int) -> str:
    """Why photos are not prepared now ("" when they are): the conditions of the module doc."""
    if not enabled:
        return "switched off"
    if not backend_can:
        return "the backend prepares nothing"
    if on_battery():
        return "on battery"
    if not loaded:
        free = available_memory_bytes()
        if free is not None and memory_bytes * 5 // 4 + MEMORY_MARGIN_BYTES > free:
            return "not enough free memory"
    return ""
