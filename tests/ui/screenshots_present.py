"""Take the README pictures of the story leaving the app: the slideshow file on a phone and a
laptop (headless Chromium), and presentation mode on a 1920x1080 and a 1280x720 screen (the real
window under Xvfb).

    .venv/bin/python tests/ui/screenshots_present.py [--out docs/screenshots]

Needs Debian's ``chromium`` (with Playwright from the test extras) and Xvfb (see
``screenshots.py``). Uses the drawn sample album of ``ui_sample`` and its hand-written story, with
Maya renamed "Maya Lopez". PNGs are palette-quantized to stay small.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path[:0] = [str(REPO), str(HERE)]

SLIDESHOW_SIZES = ((390, 844), (1280, 800))
PRESENT_SIZES = ((1920, 1080), (1280, 720))
NAMES = {"char1": "Maya Lopez"}


def save_png(data: bytes, path: Path) -> None:
    """``data`` (a PNG) palette-quantized into ``path``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print(f"{path} {path.stat().st_size // 1024} KiB")


def sample_story(folder: Path) -> object:
    import ui_sample

    from desktop_app.app.stored_story import FrameGeometry, StoredStory

    photos = ui_sample.write_photos(folder)
    frames = [
        FrameGeometry(i, path, ui_sample.PHOTO_SIZE, ui_sample.PREPARED_SIZE)
        for i, path in enumerate(photos, start=1)
    ]
    return StoredStory.parse(ui_sample.story_text(), frames, NAMES)


def slideshow_shots(out: Path) -> None:
    """The slideshow's third photo with its boxes shown, at a phone's and a laptop's size."""
    from playwright.sync_api import sync_playwright

    from desktop_app.app.sharing import SHARE_FORMATS, ShareSource

    with tempfile.TemporaryDirectory(prefix="storyteller-slideshow-") as tmp:
        stored = sample_story(Path(tmp) / "photos")
        page_file = Path(tmp) / "kite-day.html"
        SHARE_FORMATS["slideshow"].write(
            ShareSource("Kite day", "12–14 May 2024", stored), page_file
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("STORYTELLER_CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox", "--disable-background-networking", "--no-first-run"],
            )
            for width, height in SLIDESHOW_SIZES:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(page_file.as_uri())
                save_png(page.screenshot(), out / f"slideshow-title-{width}x{height}.png")
                for _ in range(3):
                    page.keyboard.press("ArrowRight")
                page.keyboard.press("b")
                save_png(page.screenshot(), out / f"slideshow-{width}x{height}.png")
                page.close()
            browser.close()


def present_shots(out: Path) -> int:
    """Presentation mode in the real window under Xvfb (``screenshots.start_xvfb``)."""
    import screenshots

    for width, height in PRESENT_SIZES:
        screenshots.SCREEN = (width, height)
        process, display = screenshots.start_xvfb()
        try:
            with tempfile.TemporaryDirectory(prefix="storyteller-present-") as home:
                env = dict(os.environ)
                env.update(
                    DISPLAY=display,
                    QT_QPA_PLATFORM="xcb",
                    STORYTELLER_HOME=home,
                    PYTHONPATH=os.pathsep.join([str(REPO), str(HERE), env.get("PYTHONPATH", "")]),
                    QT_SCALE_FACTOR="1",
                )
                env.pop("WAYLAND_DISPLAY", None)
                code = subprocess.call(
                    [sys.executable, __file__, "--present-inner", "--out", str(out)], env=env
                )
                if code:
                    return code
        finally:
            process.terminate()
            process.wait(timeout=10)
    return 0


def present_inner(out: Path) -> int:
    """Open presentation mode full screen over the sample story and save its frames."""
    from PySide6.QtCore import QBuffer, QEventLoop, QIODevice, QTimer
    from PySide6.QtGui import QGuiApplication

    from desktop_app.ui.presentation import PresentationWindow
    from desktop_app.ui.startup import create_application

    app = create_application([])
    screen = QGuiApplication.primaryScreen().geometry()
    size = f"{screen.width()}x{screen.height()}"

    def spin(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def save(name: str) -> None:
        spin(400)
        app.processEvents()
        shot = QGuiApplication.primaryScreen().grabWindow(0)  # the whole screen, as seen
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        shot.save(buffer, "PNG")
        save_png(bytes(buffer.data().data()), out / name)

    with tempfile.TemporaryDirectory(prefix="storyteller-present-photos-") as tmp:
        stored = sample_story(Path(tmp))
        show = PresentationWindow(stored, "Kite day", "12–14 May 2024")
        show.start(QGuiApplication.primaryScreen())
        spin(600)
        save(f"present-title-{size}.png")
        show.go_to(3)
        show.step_mention()  # Tab: the first mention's box
        show.step_mention()
        save(f"present-{size}.png")
        show.close()
    app.processEvents()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--present-inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("slideshow", "present"), help="one kind of picture")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.present_inner:
        return present_inner(out)
    if args.only != "present":
        slideshow_shots(out)
    if args.only != "slideshow":
        return present_shots(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
