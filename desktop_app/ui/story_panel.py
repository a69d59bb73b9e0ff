"""The story tab: the story text beside the photo it talks about, and the validation issues.

Hovering, clicking or tabbing to a grounded word shows its frame's photo with the entity's box;
clicking a box highlights every span of that entity. The panel is told which story, names and
frame photos to show; it never talks to the library or the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStyle,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.stored_story import FrameGeometry, box_on_photo, frames_of
from desktop_app.library.records import StoryRun
from desktop_app.story.display import display_story
from desktop_app.story.model import Issue, Story
from desktop_app.story.names import display_name, entity_colours
from desktop_app.ui.photo_view import BoxOverlay, PhotoView
from desktop_app.ui.photos import load_thumbnail
from desktop_app.ui.story_html import SpanRef, render_story
from desktop_app.words import counted

THUMB_PX = 180  # width of the photo beside each frame's text (logical pixels), room allowing
MIN_THUMB_PX = 96  # the photo shrinks down to this before the text column gets narrower
STORY_CHARS = 50  # the text column is never narrower than this many average characters
STORY_POINT_SIZE = 11  # the story's font size (story_html.render_story writes it)
PHOTO_VIEW_MIN_PX = 160  # the photo beside the story gives way first on a small screen
# Beside the text column: the document's margins, the photo's cell (its width + 12) and the
# text cell's padding (6 on each side).
FRAME_CHROME_PX = 12 + 6 * 2


def frame_photos_of(run: StoryRun) -> dict[int, FrameGeometry]:
    """Frame number -> photo of a stored run (the paths and sizes the model saw)."""
    return {frame.index: frame for frame in frames_of(run)}


def register_frame_images(
    document: QTextDocument,
    story: Story,
    frame_photos: Mapping[int, FrameGeometry],
    *,
    width: int,
    device_ratio: float,
    registered: set[int] | None = None,
) -> dict[int, str]:
    """Register a thumbnail of each frame's photo with ``document``; return frame -> image URL
    for ``render_story(frame_images=...)``.

    Frames in ``registered`` are assumed to be in the document already (their URL is returned
    without decoding the photo again); newly registered frames are added to it. A frame whose
    photo is unknown or unreadable gets no URL (the text shows "photo N" instead).
    """
    urls: dict[int, str] = {}
    done = registered if registered is not None else set()
    for segment in story.segments:
        frame = segment.image
        if frame is None or frame in urls:
            continue
        photo = frame_photos.get(frame)
        if photo is None:
            continue
        url = f"frame-photo:{frame}"
        if frame not in done:
            # Decoded at least twice the shown width so it stays sharp on high-DPI screens.
            image = load_thumbnail(photo.path, int(width * max(2.0, device_ratio)))
            if image.isNull():
                continue
            document.addResource(QTextDocument.ResourceType.ImageResource, QUrl(url), image)
            done.add(frame)
        urls[frame] = url
    return urls


class StoryBrowser(QTextBrowser):
    """Rich-text story; hovering a link emits ``highlighted``, tabbing to one ``link_focused``."""

    link_focused = Signal(str)  # the href of the link Tab/Shift+Tab moved to
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("storyBrowser")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setTabChangesFocus(False)
        self.setAccessibleName("Story")
        self.document().setDocumentMargin(12)

    def story_metrics(self) -> QFontMetrics:
        """The metrics of the story's font (its size is set by the rendered text)."""
        font = QFont(self.font())
        font.setPointSizeF(STORY_POINT_SIZE)
        return QFontMetrics(font)

    def thumb_width_for(self, viewport_width: int) -> int:
        """The photo width that leaves the text column ``STORY_CHARS`` characters wide (the full
        ``THUMB_PX`` where there is room, never under ``MIN_THUMB_PX``)."""
        text = STORY_CHARS * self.story_metrics().averageCharWidth()
        chrome = 2 * int(self.document().documentMargin()) + FRAME_CHROME_PX
        room = viewport_width - chrome - text - 8  # 8: rounding in the rich-text layout
        return max(MIN_THUMB_PX, min(THUMB_PX, room - room % 4))

    def minimum_story_width(self) -> int:
        """The width that gives ``STORY_CHARS`` characters of text beside the smallest photo."""
        text = STORY_CHARS * self.story_metrics().averageCharWidth()
        chrome = 2 * int(self.document().documentMargin()) + FRAME_CHROME_PX
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return text + chrome + MIN_THUMB_PX + 8 + scroll_bar + 2 * self.frameWidth()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()

    def selected_anchor(self) -> str:
        """The href of the link the keyboard selection is on ("" if none)."""
        cursor = self.textCursor()
        if not cursor.hasSelection():
            return ""
        probe = QTextCursor(self.document())
        probe.setPosition(cursor.selectionStart() + 1)
        return probe.charFormat().anchorHref()

    def focusNextPrevChild(self, next: bool) -> bool:
        # Qt moves the selection to the next link here but emits no signal for it.
        moved = super().focusNextPrevChild(next)
        href = self.selected_anchor()
        if moved and href:
            self.link_focused.emit(href)
        return moved


class StoryPanel(QWidget):
    """The story, the referenced photo with boxes, and the validation issues."""

    entity_selected = Signal(str)  # an entity whose spans are now highlighted ("" for none)
    frame_shown = Signal(int)  # the viewer shows this frame's photo because the user chose it
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.browser = StoryBrowser(self)
        self.photo_view = PhotoView(self)
        self.issues_list = QListWidget(self)
        self.issues_list.setObjectName("issuesList")
        self.issues_list.setAccessibleName("Validation issues")
        self.issues_label = QLabel("Checks")
        self.issues_label.setWordWrap(True)  # the photo pane may be narrow on a small screen
        self.photo_caption = QLabel("")
        self.photo_caption.setWordWrap(True)

        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.photo_caption)
        right_layout.addWidget(self.photo_view, 3)
        right_layout.addWidget(self.issues_label)
        right_layout.addWidget(self.issues_list, 1)
        self.issues_list.setMaximumHeight(180)
        self.photo_view.setMinimumWidth(PHOTO_VIEW_MIN_PX)
        right.setMinimumWidth(PHOTO_VIEW_MIN_PX)
        # The story is what people read: never narrower than STORY_CHARS characters of text,
        # whatever the window's size or a saved splitter says.
        self.browser.setMinimumWidth(self.browser.minimum_story_width())

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.browser)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([660, 440])  # 3:2 from the start (a saved layout replaces it)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.splitter = splitter

        self.story: Story | None = None
        self.names: dict[str, str] = {}
        self.frame_photos: dict[int, FrameGeometry] = {}
        self.selected_id: str | None = None
        self.spans: dict[str, SpanRef] = {}
        self._live = False
        # Whether the live view keeps the newest text in view: true until the reader scrolls
        # up, true again once they scroll back to the end (as chat apps do).
        self._follow_end = True
        self._frame_count: int | None = None
        self._registered_images: set[int] = set()
        self._shown_span: SpanRef | None = None
        self._thumb_px = THUMB_PX
        self.browser.resized.connect(self._fit_thumbnails)

        self.browser.highlighted.connect(self._on_highlighted)
        self.browser.anchorClicked.connect(self._on_anchor_clicked)
        self.browser.link_focused.connect(self.show_span)
        self.photo_view.box_clicked.connect(self.select_entity)
        self.issues_list.itemActivated.connect(self._on_issue_activated)
        self.issues_list.itemClicked.connect(self._on_issue_activated)
        bar = self.browser.verticalScrollBar()
        # Only the reader's own scrolling (wheel, keys, the scroll bar) says whether to follow;
        # the value also moves when the text is replaced or the view re-wraps it.
        bar.actionTriggered.connect(self._on_reader_scrolled)
        # The document is laid out after setHtml returns: the end moves later than the
        # render, so following it happens whenever the range grows.
        bar.rangeChanged.connect(self._on_scroll_range_changed)
        self.clear()

    # ------------------------------------------------------------------ content

    def clear(self, message: str = "") -> None:
        """Show no story: ``message``, or how to get one."""
        self.story = None
        self.spans = {}
        self.selected_id = None
        self._shown_span = None
        self.browser.setHtml(
            f'<p style="color:#666;">{message}</p>'
            if message
            else '<p style="color:#666;">No story yet. Add photos to the album and press '
            "<b>Generate</b> (Ctrl+Return).</p>"
        )
        self.issues_list.clear()
        self.issues_label.setText("Checks")
        self.photo_view.clear_photo()
        self.photo_caption.setText("")

    def set_frame_photos(self, frame_photos: Mapping[int, FrameGeometry]) -> None:
        """The photos of the frames of the story about to be shown."""
        self.frame_photos = dict(frame_photos)
        self._registered_images.clear()

    def set_story(
        self,
        story: Story,
        *,
        names: Mapping[str, str] | None = None,
        issues: list[Issue] | None = None,
        live: bool = False,
        frame_count: int | None = None,
    ) -> None:
        """Show ``story`` (re-rendered in place; the scroll position is kept)."""
        self.story = story
        self.names = dict(names or {})
        if live and not self._live:
            self._follow_end = True  # a run starts: show its newest text
        self._live = live
        self._frame_count = frame_count
        self._render()
        if issues is not None:
            self.set_issues(issues)

    def set_names(self, names: Mapping[str, str]) -> None:
        """Re-render with the user's display names (a rename)."""
        self.names = dict(names)
        if self.story is not None:
            self._render()
            if self._shown_span is not None:
                self._show_span(self._shown_span, chosen=False)

    def _render(self) -> None:
        if self.story is None:
            return
        images = register_frame_images(
            self.browser.document(),
            self.story,
            self.frame_photos,
            width=THUMB_PX,
            device_ratio=self.devicePixelRatioF(),
            registered=self._registered_images,
        )
        self._thumb_px = self.browser.thumb_width_for(self.browser.viewport().width())
        rendered = render_story(
            display_story(self.story, (), self.names),
            frame_images=images,
            selected_id=self.selected_id,
            frame_count=self._frame_count,
            live=self._live,
            image_width=self._thumb_px,
        )
        bar = self.browser.verticalScrollBar()
        position = bar.value()
        self.spans = rendered.spans
        self.browser.setHtml(rendered.html)
        # Follow the text while it is being written, unless the reader scrolled up to read.
        bar.setValue(bar.maximum() if self._live and self._follow_end else position)

    def _fit_thumbnails(self) -> None:
        """Re-render when the view's width calls for another photo size: after the event that
        resized it (setHtml itself resizes the view when its scroll bar comes or goes, and
        rendering again inside setHtml would lay the story out twice)."""
        QTimer.singleShot(0, self._refit_thumbnails)

    def _refit_thumbnails(self) -> None:
        wanted = self.browser.thumb_width_for(self.browser.viewport().width())
        if wanted != self._thumb_px and self.story is not None:
            self._render()

    def _on_reader_scrolled(self, _action: int) -> None:
        bar = self.browser.verticalScrollBar()
        # The slider is already where the action takes it; its value follows after this.
        self._follow_end = bar.sliderPosition() >= bar.maximum() - 4

    def _on_scroll_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._live and self._follow_end:
            self.browser.verticalScrollBar().setValue(maximum)

    def set_issues(self, issues: list[Issue]) -> None:
        """List the validator's issues; each item jumps to its place when activated."""
        self.issues_list.clear()
        errors = 0
        for issue in issues:
            severity = getattr(issue.severity, "value", issue.severity)
            errors += severity == "error"
            where = []
            if issue.frame is not None:
                where.append(f"frame {issue.frame}")
            if issue.id:
                where.append(issue.id)
            prefix = "✖" if severity == "error" else "⚠"
            text = f"{prefix} {issue.message}" + (f"  ({', '.join(where)})" if where else "")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, issue)
            item.setToolTip(f"{issue.code}: {issue.message}")
            self.issues_list.addItem(item)
        if issues:
            warnings = counted(len(issues) - errors, "warning")
            self.issues_label.setText(f"Checks: {counted(errors, 'error')}, {warnings}")
        else:
            self.issues_label.setText("Checks: no problems found")

    # ------------------------------------------------------------------ interaction

    def _on_highlighted(self, url: QUrl | str) -> None:
        href = url.toString() if isinstance(url, QUrl) else str(url)
        span = self.spans.get(href)
        if span is not None:
            self._show_span(span, chosen=False)  # a hover: the strip's selection stays

    def _on_anchor_clicked(self, url: QUrl) -> None:
        span = self.spans.get(url.toString())
        if span is None:
            return
        self._show_span(span)
        if span.ids:
            self.select_entity(span.ids[0], scroll=False)

    def show_span(self, href: str) -> None:
        """Show the box(es) of the span behind link ``href`` (what hovering it does)."""
        span = self.spans.get(href)
        if span is not None:
            self._show_span(span)

    def _show_span(self, span: SpanRef, *, chosen: bool = True) -> None:
        self._shown_span = span
        frame = span.frame
        if frame is None and span.ids and self.story is not None:
            frames = self.story.boxes_for(span.ids[0])
            frame = min(frames) if frames else None
        if frame is None:
            self.status_message.emit(f"“{span.text}” is not tied to a photo.")
            return
        self.show_entities(frame, span.ids, caption_text=span.text, chosen=chosen)

    def show_entities(
        self,
        frame: int,
        entity_ids: tuple[str, ...],
        caption_text: str = "",
        *,
        chosen: bool = True,
    ) -> None:
        """Show frame ``frame``'s photo with the boxes of ``entity_ids`` in it; ``chosen`` (not a
        mere hover) also tells ``frame_shown``, so the photo strip selects that photo."""
        photo = self.frame_photos.get(frame)
        if photo is None or self.story is None:
            self.status_message.emit(f"Frame {frame} has no photo in this album any more.")
            return
        if not self.photo_view.set_photo(photo.path):
            self.status_message.emit(f"{photo.path} cannot be shown: it is missing or unreadable.")
            return
        original = self.photo_view.original_size
        prepared = photo.prepared_size or original
        colors = entity_colours(self.story)
        overlays: list[BoxOverlay] = []
        missing: list[str] = []
        for entity_id in entity_ids:
            box = self.story.boxes_for(entity_id).get(frame)
            name = display_name(entity_id, self.story, self.names)
            if box is None:
                missing.append(name)
                continue
            rect = box_on_photo(box, prepared, original)
            overlays.append(BoxOverlay(entity_id, name, rect, colors.get(entity_id, "#ffcc00")))
        self.photo_view.show_boxes(overlays)
        who = ", ".join(o.label for o in overlays)
        caption = f"Frame {frame}"
        if caption_text:
            caption += f" · “{caption_text}”"
        if who:
            caption += f" → {who}"
        if missing:
            caption += f" (no box for {', '.join(missing)} in this photo)"
        self.photo_caption.setText(caption)
        if chosen:
            self.frame_shown.emit(frame)

    def show_photo(self, path: Path, caption: str) -> bool:
        """Show ``path`` large, without boxes (a photo no story speaks of yet); False when it
        cannot be read (the viewer says so)."""
        if not self.photo_view.set_photo(path):
            self.photo_caption.setText("")
            return False
        self.photo_view.show_boxes([])
        self.photo_caption.setText(caption)
        return True

    def scroll_to_frame(self, frame: int) -> None:
        """Bring frame ``frame``'s text into view."""
        self.browser.scrollToAnchor(f"frame{frame}")

    def select_entity(self, entity_id: str, scroll: bool = True) -> None:
        """Highlight every span of ``entity_id`` (clicking a box or a cast card does this)."""
        self.selected_id = entity_id or None
        if self.story is not None:
            self._render()
        self.entity_selected.emit(entity_id)
        if scroll and entity_id:
            for href, span in self.spans.items():
                if entity_id in span.ids:
                    self._scroll_to_span(href)
                    break
            name = display_name(entity_id, self.story, self.names) if self.story else entity_id
            count = sum(entity_id in span.ids for span in self.spans.values())
            self.status_message.emit(f"{name}: {counted(count, 'mention')} highlighted")

    def _scroll_to_span(self, href: str) -> None:
        document = self.browser.document()
        block = document.begin()
        while block.isValid():
            iterator = block.begin()
            while not iterator.atEnd():
                fragment = iterator.fragment()
                if fragment.isValid() and fragment.charFormat().anchorHref() == href:
                    cursor = self.browser.textCursor()
                    cursor.setPosition(fragment.position())
                    self.browser.setTextCursor(cursor)
                    self.browser.ensureCursorVisible()
                    return
                iterator += 1
            block = block.next()

    def _on_issue_activated(self, item: QListWidgetItem) -> None:
        issue = item.data(Qt.ItemDataRole.UserRole)
        if issue is None:
            return
        if issue.frame is not None:
            self.browser.scrollToAnchor(f"frame{issue.frame}")
            if issue.id:
                self.show_entities(issue.frame, (issue.id,))
            elif issue.frame in self.frame_photos:
                self.show_entities(issue.frame, ())
        elif issue.id:
            self.select_entity(issue.id)
