"""Take the README screenshots of the desktop app under Xvfb, at 1440x900 and 1024x700.

    .venv/bin/python tests/ui/screenshots.py [--out docs/screenshots]

The 1440x900 pictures go to the output folder, those of a small laptop screen (1024x700, the
window's states only, not the dialogs) to its ``1024x700`` subfolder.

Starts Xvfb (install it with ``apt-get install -y xvfb xauth libxcb-cursor0 libxcb-icccm4
libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1
libxkbcommon-x11-0``), then runs the real app window on the xcb platform with a temporary
STORYTELLER_HOME, the drawn sample album of ``ui_sample`` and a scripted engine replaying a
hand-written story whose boxes match the drawings. PNGs are palette-quantized to stay small.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCREEN = (1440, 900)  # the Xvfb screen, and the size of the README's pictures
SMALL = (1024, 700)  # a small laptop screen: the layout must hold there too


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Start Xvfb on a free display number; return the process and the DISPLAY value."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        sys.exit("Xvfb is not installed: apt-get install -y xvfb xauth (see this file's docstring)")
    for number in range(90, 120):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        process = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                return process, f":{number}"
            if process.poll() is not None:
                break
            time.sleep(0.1)
        process.terminate()
        process.wait(timeout=10)  # reap it before trying the next display
    sys.exit("could not start Xvfb on displays :90-:119")


def outer(out: Path) -> int:
    """Start Xvfb and run the inner part (the app) against it."""
    process, display = start_xvfb()
    try:
        with tempfile.TemporaryDirectory(prefix="storyteller-shots-") as home:
            env = dict(os.environ)
            env.update(
                DISPLAY=display,
                QT_QPA_PLATFORM="xcb",
                STORYTELLER_HOME=home,
                PYTHONPATH=os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")]),
                QT_SCALE_FACTOR="1",
            )
            env.pop("WAYLAND_DISPLAY", None)
            for size, folder in ((SCREEN, out), (SMALL, out / f"{SMALL[0]}x{SMALL[1]}")):
                code = subprocess.call(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--inner",
                        "--out",
                        str(folder),
                        "--size",
                        f"{size[0]}x{size[1]}",
                    ],
                    env={**env, "STORYTELLER_HOME": tempfile.mkdtemp(dir=home)},
                )
                if code:
                    return code
            return 0
    finally:
        process.terminate()
        process.wait(timeout=10)


def inner(out: Path, screen: tuple[int, int]) -> int:
    """Drive the app through its main states in a ``screen``-sized window and save a PNG of
    each (the dialogs too at the README's size)."""
    import ui_sample
    from PIL import Image
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QWidget

    from desktop_app.app.settings import Settings, open_library
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.startup import create_application

    app = create_application([])
    out.mkdir(parents=True, exist_ok=True)
    photos = ui_sample.write_photos(Path(os.environ["STORYTELLER_HOME"]) / "Pictures" / "Kite day")
    delay = [0.0]

    def backend(_settings: Settings) -> Any:
        return ui_sample.scripted_backend(ui_sample.story_text(), token_delay_s=delay[0])

    settings = Settings()
    library = open_library(settings)
    window = MainWindow(library, backend, settings=settings, confirm=lambda *_a: True)
    window.status_bar.set_backend("llama.cpp (CPU)", "QwenStoryteller Q4_K_M")

    def spin(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("the app did not reach the expected state")
            spin(20)

    def save(widget: QWidget, name: str) -> None:
        spin(250)
        app.processEvents()
        path = out / name
        widget.grab().save(str(path))
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            small.save(path, optimize=True)
        print(f"{path} {path.stat().st_size // 1024} KiB")

    window.resize(*screen)
    window.show()
    spin(500)
    save(window, "01-empty.png")

    window.sidebar.new_album("Kite day", edit=False)
    window.sidebar.new_album("Grandma's 80th", edit=False)
    window.sidebar.album_view.setCurrentIndex(window.album_model.index(0))
    window.imports.import_paths(photos)
    wait_until(lambda: window.photo_model.rowCount() == len(photos))
    wait_until(
        lambda: all(window.photo_model.has_thumbnail(p.id) for p in window.photo_model.photos())
    )
    save(window, "02-album.png")

    delay[0] = 0.006
    window.generation.generate()
    wait_until(lambda: "Writing frame 3" in window.status_bar.phase_label.text(), timeout_s=60)
    save(window, "03-writing.png")
    wait_until(lambda: not window.generation.is_generating(), timeout_s=60)

    panel = window.story_panel
    href = next(h for h, s in panel.spans.items() if s.frame == 3 and s.ids == ("char3",))
    panel.show_span(href)
    panel.select_entity("char3", scroll=False)
    panel.browser.scrollToAnchor("frame3")
    save(window, "04-story-box.png")

    window.tabs.setCurrentWidget(window.analysis_panel)
    window.analysis_panel.tabs.setCurrentIndex(0)
    window.analysis_panel.frame_tabs.setCurrentIndex(2)
    save(window, "05-analysis.png")
    window.versions.rename_entity("char2", "Biscuit the Brave")
    window.analysis_panel.tabs.setCurrentIndex(2)
    save(window, "06-cast.png")
    window.analysis_panel.tabs.setCurrentIndex(3)
    save(window, "07-matrix.png")

    if screen != SCREEN:  # the dialogs do not depend on the window's size
        window.close()
        library.close()
        app.processEvents()
        return 0

    from desktop_app.ui.first_run import FirstRunGuide
    from desktop_app.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(settings, window)
    dialog.show()
    dialog.adjustSize()
    save(dialog, "08-settings.png")
    dialog.close()
    guide = FirstRunGuide(settings, window)
    guide.show()
    guide.adjustSize()
    save(guide, "09-first-run.png")
    guide.close()

    window.close()
    library.close()
    app.processEvents()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", default=f"{SCREEN[0]}x{SCREEN[1]}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        width, height = (int(n) for n in args.size.split("x"))
        return inner(args.out, (width, height))
    return outer(args.out.resolve())


if __name__ == "__main__":
    sys.exit(main())
