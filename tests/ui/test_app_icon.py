"""The application's own icon on its windows (title bar, taskbar, Alt+Tab), from package data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from desktop_app.ui.startup import ICON_DIR, app_icon

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_started_app_shows_its_icon_at_several_sizes(tmp_path: Path) -> None:
    """A fresh process, as a pip install starts it: the main window's icon is Storyteller's, with
    small and large sizes so the title bar and a high-DPI taskbar both get a sharp one."""
    probe = (
        "import json\n"
        "from desktop_app.ui.startup import build_main_window, create_application\n"
        "app = create_application([])\n"
        "window = build_main_window()\n"
        "window.show()\n"
        "app.processEvents()\n"
        "sizes = [s.width() for s in window.windowIcon().availableSizes()]\n"
        "print(json.dumps({'null': window.windowIcon().isNull(),\n"
        "                  'app_null': app.windowIcon().isNull(), 'sizes': sizes}))\n"
        "window.close()\n"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # not the repository: the icon must come from the package
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["null"] is False
    assert report["app_null"] is False
    assert {16, 32, 48, 256} <= set(report["sizes"])


def test_the_icon_has_every_packaged_png_and_they_are_real_images(qapp: QApplication) -> None:
    icon = app_icon()
    sizes = sorted(size.width() for size in icon.availableSizes())
    assert sizes == [16, 24, 32, 48, 64, 128, 256, 512]
    assert len(list(ICON_DIR.glob("storyteller-*.png"))) == len(sizes)
    pixmap = icon.pixmap(48, 48)
    assert not pixmap.isNull()
    assert pixmap.toImage().pixelColor(24, 24).alpha() == 255  # the tile, not an empty square
