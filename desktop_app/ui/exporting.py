"""Exporting a story version: HTML with embedded photos, Markdown, JSON and PDF.

HTML, Markdown and JSON come from ``desktop_app.story``'s renderers; PDF is laid out by Qt
(``QTextDocument`` printed to a ``QPdfWriter`` over a ``QBuffer``, all usable outside the GUI
thread, as are the ``QImage`` photos it embeds). Every file is written to a temporary name and
renamed (``desktop_app.fileio``), and every export may run in a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QMarginsF, QUrl
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

from desktop_app.app import exports
from desktop_app.app.stored_story import StoredStory
from desktop_app.errors import StorytellerError
from desktop_app.fileio import atomic_write_bytes, atomic_write_text
from desktop_app.ui.photos import load_thumbnail
from desktop_app.ui.story_html import render_story

# kind -> (label, file suffix, file-dialog filter)
EXPORT_KINDS: dict[str, tuple[str, str, str]] = {
    "html": ("HTML", ".html", "Web page (*.html)"),
    "markdown": ("Markdown", ".md", "Markdown (*.md)"),
    "json": ("JSON", ".json", "JSON (*.json)"),
    "pdf": ("PDF", ".pdf", "PDF (*.pdf)"),
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
        raise _cannot_write(path, err) from err
    return path


def _cannot_write(path: Path, err: OSError) -> StorytellerError:
    return StorytellerError(
        f"{path} cannot be written ({err.strerror or err}): choose another folder"
    )


def write_pdf(path: Path, stored: StoredStory, title: str) -> None:
    """Lay the story out as a printable document (photo beside each frame's text) and save it."""
    document = QTextDocument()
    images: dict[int, str] = {}
    for index, photo in stored.photos().items():
        image = load_thumbnail(photo, 600)
        if image.isNull():
            continue
        url = f"frame-photo:{index}"
        document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(url), image)
        images[index] = url
    rendered = render_story(stored.display(), frame_images=images, image_width=200, links=False)
    document.setHtml(f"<h1>{_escape(title)}</h1>{rendered.html}")
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(title)
    writer.setCreator("Storyteller")
    writer.setResolution(150)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(15, 15, 15, 15),
            QPageLayout.Unit.Millimeter,
        )
    )
    document.print_(writer)
    del writer  # finishes the PDF
    pdf = bytes(buffer.data().data())
    buffer.close()
    if not pdf:
        raise StorytellerError(f"{path} could not be written as PDF: the file came out empty")
    try:
        atomic_write_bytes(path, pdf)
    except OSError as err:
        raise _cannot_write(path, err) from err


def _escape(text: str) -> str:
    import html

    return html.escape(text)
