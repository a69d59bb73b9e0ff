"""The self-test's Qt check (``Storyteller --self-test``): Qt starts, draws, decodes and prints.

It lives with the GUI so that ``desktop_app.selftest`` stays free of Qt; the command line passes
``check_qt`` to ``run_self_test``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from desktop_app import __version__
from desktop_app.selftest import CheckResult, SelfTestProblem, sample_photo, timed_check

# Image formats the app must read through Qt (the photo view, thumbnails and icons): the bundle
# keeps exactly these image plugins, so a check here catches a plugin the bundle lost.
REQUIRED_QT_IMAGE_FORMATS: tuple[str, ...] = ("jpeg", "png", "gif", "webp", "tiff", "svg")


def _needs_offscreen() -> bool:
    """True on Linux/BSD when no display is reachable and no Qt platform is chosen.

    Qt aborts the whole process when it cannot open its platform, so this is decided before the
    QApplication exists. macOS and Windows always have their native platform.
    """
    if sys.platform in ("win32", "darwin"):
        return False
    if os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_qt(results: list[CheckResult], workdir: Path, screenshot: Path | None) -> None:
    """Start Qt, draw a widget, decode a JPEG through the image plugins, write a one-page PDF."""
    with timed_check(results, "Qt") as outcome:
        if _needs_offscreen():
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, Qt
        from PySide6.QtGui import (
            QFontDatabase,
            QFontInfo,
            QFontMetrics,
            QGuiApplication,
            QImage,
            QImageReader,
            QPageSize,
            QPainter,
            QPdfWriter,
        )
        from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

        app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "storyteller"])
        platform = QGuiApplication.platformName()
        # Without any font file Qt still "draws" text, as empty boxes, and still lists fontconfig's
        # generic families; only the default font's glyph coverage tells.
        families = QFontDatabase.families()
        if not QFontMetrics(app.font()).inFont("A"):
            raise SelfTestProblem(
                "no fonts found: every text would show as boxes; install fonts "
                "(for example the fonts-dejavu-core package)"
            )

        widget = QWidget()
        widget.setWindowTitle("Storyteller self-test")
        layout = QVBoxLayout(widget)
        label = QLabel(f"Storyteller {__version__} self-test")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(label)
        widget.resize(360, 120)
        if platform != "offscreen":  # a real window on a real screen (offscreen warns)
            widget.show()
            app.processEvents()
        image = widget.grab().toImage()
        widget.close()
        if image.isNull() or image.width() < 100:
            raise SelfTestProblem("the widget could not be drawn (empty grab)")
        colours = {
            image.pixel(x, y)
            for x in range(0, image.width(), 3)
            for y in range(0, image.height(), 3)
        }
        if len(colours) < 2:
            raise SelfTestProblem("the widget drew no text: no usable font was found")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not image.save(str(screenshot)):
                raise SelfTestProblem(f"could not save the screenshot to {screenshot}")

        formats = {bytes(name.data()).decode() for name in QImageReader.supportedImageFormats()}
        missing = [name for name in REQUIRED_QT_IMAGE_FORMATS if name not in formats]
        if missing:
            raise SelfTestProblem(
                f"Qt cannot read {', '.join(missing)} images (image format plugins missing)"
            )
        photo = sample_photo(workdir / "qt-check.jpg")
        decoded = QImage(str(photo))
        if decoded.isNull() or (decoded.width(), decoded.height()) != (448, 336):
            raise SelfTestProblem("Qt could not decode a JPEG photo")

        pdf_bytes = QByteArray()
        buffer = QBuffer(pdf_bytes)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        writer = QPdfWriter(buffer)
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A6))
        writer.setPageMargins(QMarginsF(10, 10, 10, 10))
        painter = QPainter(writer)
        painter.drawText(20, 40, "Storyteller")
        painter.drawImage(20, 60, decoded.scaledToWidth(200))
        painter.end()
        buffer.close()
        if not bytes(pdf_bytes.data()).startswith(b"%PDF"):
            raise SelfTestProblem("Qt could not write a PDF (export to PDF would fail)")

        outcome["summary"] = f"PySide6 {pyside_version}, platform {platform}"
        outcome["details"] = (
            f"drew a {image.width()}x{image.height()} widget"
            + (f", saved to {screenshot}" if screenshot else ""),
            f"image formats: {', '.join(sorted(formats))}",
            f"PDF export: {pdf_bytes.size()} bytes",
            f"fonts: {len(families)} families, default {QFontInfo(app.font()).family()}",
        )
