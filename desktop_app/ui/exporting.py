"""Exporting a story version: the share formats (``app.sharing``: slideshow, HTML, Markdown,
PDF, ...) and JSON.

This module adds the share format Qt writes, PDF, to ``app.sharing.SHARE_FORMATS`` when it is
imported (the CLI imports it for ``album share --as pdf``). HTML, Markdown, the slideshow and
JSON come from ``desktop_app.story``'s writers; PDF is laid out by Qt page
by page: each frame's rich text (``ui.story_html``, the display model's Qt writer) is one
``QTextDocument``, measured and painted with a ``QPainter`` onto a ``QPdfWriter`` over a
``QBuffer`` (all usable outside the GUI thread, as are the ``QImage`` photos it embeds), so a
frame's photo and text always share a page. Every file is written to a temporary name and
renamed (``desktop_app.fileio``), and every export may run in a worker thread. When an export
ends, whoever started it shows ``show_export_notice``: a small window, not modal, with *Open*
and *Show in folder*.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QLocale, QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QGuiApplication,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app import exports
from desktop_app.app.sharing import (
    SHARE_FORMATS,
    SHARE_NAMES,
    ShareFormat,
    ShareSource,
    register_share_format,
    size_text,
)
from desktop_app.app.stored_story import StoredStory
from desktop_app.errors import (
    StorytellerError,
    disk_full_error,
    is_disk_full,
    low_space_warning,
)
from desktop_app.fileio import atomic_write_bytes, atomic_write_text
from desktop_app.ui.photos import load_thumbnail
from desktop_app.ui.story_html import render_story


def _share_pdf(source: ShareSource, dest: Path) -> Path:
    if QGuiApplication.instance() is None:  # the command line: Qt lays out without a screen
        import os

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        global _pdf_app
        # A QApplication, not a QGuiApplication: a later QWidget in the same process (the test
        # suite's GUI tests after the CLI's) aborts when the application has no widgets.
        _pdf_app = QApplication([])
    write_pdf(dest, source.story, source.title)
    return dest


_pdf_app: QApplication | None = None  # kept alive for the command line's PDF
register_share_format(ShareFormat("pdf", "PDF", ".pdf", _share_pdf, file_filter="PDF (*.pdf)"))

# The Export menu: kind -> (label, file suffix, file-dialog filter); every share format (a
# folder format has no suffix) and the story JSON.
EXPORT_KINDS: dict[str, tuple[str, str, str]] = {
    **{
        name: (
            SHARE_FORMATS[name].label,
            SHARE_FORMATS[name].suffix,
            SHARE_FORMATS[name].file_filter,
        )
        for name in SHARE_NAMES
        if name in SHARE_FORMATS
    },
    "json": ("JSON", ".json", "JSON (*.json)"),
}


def export_story(kind: str, path: Path, stored: StoredStory, title: str) -> Path:
    """Write ``stored`` (under its names) to ``path`` as ``kind``; returns ``path``.

    HTML embeds each frame's photo (``app.exports``); a photo that moved is left out.
    """
    if kind == "pdf":
        write_pdf(path, stored, title)
        return path
    text = exports.render_stored(kind, stored, title=title)
    try:
        atomic_write_text(path, text)
    except OSError as err:
        raise _cannot_write(path, err, len(text.encode("utf-8"))) from err
    return path


EXPORT_TEXT_BYTES = 256 * 1024


def export_space_warning(kind: str, path: Path, stored: StoredStory) -> str:
    """A warning when ``path``'s disk has less than twice what the export may take, else "":
    a story's text with its markup (well under ``EXPORT_TEXT_BYTES``), plus the photos an HTML
    page or a PDF embeds."""
    expected = EXPORT_TEXT_BYTES
    if kind in ("html", "pdf"):
        for frame in stored.frames:
            with contextlib.suppress(OSError):
                expected += frame.path.stat().st_size * 4 // 3
    return low_space_warning(path.parent, expected, what="the export")


def _cannot_write(path: Path, err: OSError, needed: int | None = None) -> StorytellerError:
    if is_disk_full(err, path.parent):
        return disk_full_error(
            path.parent,
            needed=needed,
            what=f"the export {path.name}",
            kept="nothing was lost: the version is unchanged",
            then="export again, or choose another folder",
        )
    return StorytellerError(
        f"{path} cannot be written ({err.strerror or err}): choose another folder"
    )


# Territories whose usual paper is US Letter (CLDR supplemental data, paperSize "US-Letter");
# everywhere else uses A4.
LETTER_TERRITORIES = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)
PDF_MARGIN_MM = 15.0
PDF_RESOLUTION = 300  # device pixels per inch of the layout: photos stay sharp when printed
PDF_PHOTO_WIDTH = 200  # CSS pixels (1/96 inch): about 53 mm
PDF_FRAME_GAP_PT = 10.0  # space between two frames on a page
PDF_FOOTER_PT = 18.0  # the page number's line at the foot of each page


def pdf_page_size(locale: QLocale | None = None) -> QPageSize:
    """The paper a PDF is laid out on: Letter where ``locale`` (default: the application's
    locale) uses it, A4 elsewhere."""
    territory = (locale or QLocale()).territory()
    if QLocale.territoryToCode(territory) in LETTER_TERRITORIES:
        return QPageSize(QPageSize.PageSizeId.Letter)
    return QPageSize(QPageSize.PageSizeId.A4)


def write_pdf(path: Path, stored: StoredStory, title: str) -> None:
    """Lay the story out as a printable document and save it: the title, then each frame's
    photo beside its text, a frame never split between pages (one that does not fit the rest
    of a page starts the next), on the locale's paper (``pdf_page_size``), pages numbered.
    """
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(title)
    writer.setCreator("Storyteller")
    writer.setResolution(PDF_RESOLUTION)
    writer.setPageLayout(
        QPageLayout(
            pdf_page_size(),
            QPageLayout.Orientation.Portrait,
            QMarginsF(PDF_MARGIN_MM, PDF_MARGIN_MM, PDF_MARGIN_MM, PDF_MARGIN_MM),
            QPageLayout.Unit.Millimeter,
        )
    )
    frames = _pdf_frames(stored)
    heading = f"<h1>{_escape(title)}</h1>"  # with the first frame: a title never stands alone
    frames[0] = (heading + frames[0][0], frames[0][1])
    blocks = [_pdf_block(writer, html, images) for html, images in frames]
    painter = QPainter()
    if not painter.begin(writer):
        raise StorytellerError(f"{path} could not be written as PDF: Qt could not start a page")
    try:
        _paint_pages(painter, writer, blocks)
    finally:
        painter.end()
    del writer  # finishes the PDF
    pdf = bytes(buffer.data().data())
    buffer.close()
    if not pdf:
        raise StorytellerError(f"{path} could not be written as PDF: the file came out empty")
    try:
        atomic_write_bytes(path, pdf)
    except OSError as err:
        raise _cannot_write(path, err, len(pdf)) from err


def _pdf_frames(stored: StoredStory) -> list[tuple[str, dict[str, QImage]]]:
    """Each frame's rich text (``ui.story_html``, no links) and the photo it shows."""
    display = stored.display()
    photos = stored.photos()
    if not display.frames:  # no story text: the same note the story view shows
        return [(render_story(display, links=False).html, {})]
    out = []
    for frame in display.frames:
        images: dict[str, QImage] = {}
        urls: dict[int, str] = {}
        photo = photos.get(frame.index) if frame.index is not None else None
        if photo is not None and frame.index is not None:
            image = load_thumbnail(photo, 3 * PDF_PHOTO_WIDTH)
            if not image.isNull():
                urls[frame.index] = images_url = f"frame-photo:{frame.index}"
                images[images_url] = image
        one = replace(display, frames=(frame,))
        html = render_story(one, frame_images=urls, image_width=PDF_PHOTO_WIDTH, links=False).html
        out.append((html, images))
    return out


def _pdf_block(
    writer: QPdfWriter, html: str, images: Mapping[str, QImage] | None = None
) -> QTextDocument:
    """``html`` laid out for the writer's page width, in its device pixels."""
    document = QTextDocument()
    document.documentLayout().setPaintDevice(writer)  # fonts and images at the PDF's resolution
    document.setDocumentMargin(0)
    for url, image in (images or {}).items():
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(url), image)
    document.setHtml(html)
    document.setTextWidth(writer.width())
    return document


def _paint_pages(painter: QPainter, writer: QPdfWriter, blocks: list[QTextDocument]) -> None:
    """Place each block below the last one, on a new page when it does not fit the rest of
    this one, then paint the pages with "n / total" at their foot.

    A block taller than a whole page (a very long frame) starts a page of its own and goes on
    over as many pages as it needs, broken between lines by Qt's pagination.
    """
    points = writer.resolution() / 72.0
    gap, footer = PDF_FRAME_GAP_PT * points, PDF_FOOTER_PT * points
    width, height = float(writer.width()), writer.height() - footer
    # pages[n] = the (block, top on the page, slice of the block) painted on page n
    pages: list[list[tuple[QTextDocument, float, QRectF]]] = [[]]
    y = 0.0
    for block in blocks:
        block_height = block.size().height()
        if block_height > height:
            if pages[-1]:
                pages.append([])
            block.setPageSize(QSizeF(width, height))  # paginated: lines never cut in two
            for n in range(block.pageCount()):
                if n:
                    pages.append([])
                pages[-1].append((block, 0.0, QRectF(0, n * height, width, height)))
            pages.append([])
            y = 0.0
            continue
        if y > 0 and y + block_height > height:
            pages.append([])
            y = 0.0
        pages[-1].append((block, y, QRectF(0, 0, width, block_height)))
        y += block_height + gap
    if len(pages) > 1 and not pages[-1]:
        pages.pop()
    footer_font = QFont(blocks[0].defaultFont())
    footer_font.setPointSizeF(9)
    for number, placed in enumerate(pages, start=1):
        if number > 1:
            writer.newPage()
        for block, top, part in placed:
            painter.save()
            painter.translate(0, top - part.top())
            block.drawContents(painter, part)
            painter.restore()
        painter.save()
        painter.setFont(QFont(footer_font, writer))
        painter.setPen(QColor("#666666"))
        painter.drawText(
            QRectF(0, height, width, footer),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom,
            f"{number} / {len(pages)}",
        )
        painter.restore()


class ExportNotice(QDialog):
    """A small window, not modal, after an export: where the file is, *Open* (the file in the
    app the system chooses) and *Show in folder* (the folder it is in)."""

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.setWindowTitle("Export finished")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.message = QLabel(self)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        size = f" ({size_text(path.stat().st_size)})" if path.is_file() else ""
        self.message.setText(f"{path.name}{size} is saved in\n{path.parent}")
        self.setMinimumWidth(45 * self.fontMetrics().averageCharWidth())
        buttons = QDialogButtonBox(self)
        self.open_button = QPushButton("Open", self)
        self.folder_button = QPushButton("Show in folder", self)
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.folder_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.open_button.clicked.connect(self.open_file)
        self.folder_button.clicked.connect(self.show_folder)
        self.open_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    def open_file(self) -> None:
        """Open the exported file in the app the system has for it."""
        self._open(self.path, f"{self.path.name} could not be opened: no app here opens it")

    def show_folder(self) -> None:
        """Open the folder the file is in, in the system's file manager."""
        self._open(self.path.parent, f"{self.path.parent} could not be shown: open it yourself")

    def _open(self, target: Path, failure: str) -> None:
        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(target))):
            self.accept()
        else:  # stay, and say so: the path above can still be copied
            self.message.setText(f"{failure}.\n{self.path}")


_shown_notice: ExportNotice | None = None  # at most one; kept alive here while it is shown


def show_export_notice(path: Path, parent: QWidget | None = None) -> ExportNotice:
    """Tell the user an export finished, with *Open* and *Show in folder*; the caller that
    started the export calls this when it ends. A new notice replaces the one still shown."""
    global _shown_notice
    if _shown_notice is not None:
        _shown_notice.close()
    notice = ExportNotice(path, parent)
    _shown_notice = notice
    notice.finished.connect(lambda _result: _forget_notice(notice))
    notice.show()
    return notice


def _forget_notice(notice: ExportNotice) -> None:
    global _shown_notice
    if _shown_notice is notice:
        _shown_notice = None


def _escape(text: str) -> str:
    import html

    return html.escape(text)
