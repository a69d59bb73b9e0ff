"""Presentation mode (View → Present, F5): the version being read, full screen, a frame at a time.

``PresentationController`` is built with the session like the window's other parts; ``present``
takes the version the user is reading (complete, stopped or failed: whatever has text), asks on
which screen when there are several (a second display by default) and opens a
``PresentationWindow`` there. The window shows a title frame (album name, date range), one frame
per photo (the photo as large as the screen allows, its text beside it in a large type, below it
on a portrait screen) and an end frame.

Keys are what a presentation clicker sends: Right/Space/PageDown forward, Left/PageUp back,
Home/End, Esc to leave. B shows every box of the frame; Tab (Shift+Tab) walks through the
frame's mentions one at a time, highlighting the words and showing that one's boxes. P starts and
stops timed advance. The mouse pointer hides after a moment without moving. The screen is kept
awake where the platform allows (``ui.keep_awake``); where it does not, the status bar says so.

The photo is the story view's ``PhotoView`` (scene units are the upright photo's pixels) with
the boxes the HTML page and the slideshow draw (``app.exports.photo_boxes``); the text is the
story view's rich text (``ui.story_html``) with the same colours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QCursor, QGuiApplication, QKeyEvent, QMouseEvent, QScreen
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QFrame,
    QInputDialog,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.exports import photo_boxes
from desktop_app.app.sharing import date_range_text
from desktop_app.app.stored_story import StoredStory
from desktop_app.library.records import RunStatus
from desktop_app.story.display import DisplayFrame
from desktop_app.ui.keep_awake import KeepAwake, keep_screen_awake
from desktop_app.ui.photo_view import BoxOverlay, PhotoView
from desktop_app.ui.session import OpenVersion, Session
from desktop_app.ui.story_html import render_story

logger = logging.getLogger(__name__)

BACKGROUND = "#f6f3ee"  # warm paper: the entity colours are chosen for a light background
INK = "#1a1a1a"
PHOTO_SHARE = 64  # of a landscape screen's width, the rest for the text
ADVANCE_S = 8.0  # timed advance (P): seconds per frame
CURSOR_HIDE_MS = 2000
NEXT_KEYS = {Qt.Key.Key_Right, Qt.Key.Key_Space, Qt.Key.Key_PageDown, Qt.Key.Key_Down}
PREVIOUS_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_PageUp, Qt.Key.Key_Up, Qt.Key.Key_Backspace}


@dataclass(frozen=True)
class Slide:
    """One screen of the presentation: the title, a frame of the story, or the end."""

    kind: str  # "title", "frame" or "end"
    frame: DisplayFrame | None = None


@dataclass(frozen=True)
class Mention:
    """A tagged word of the shown frame whose entities have boxes on its photo."""

    text: str
    ids: tuple[str, ...]


class PresentationWindow(QWidget):
    """The full-screen presentation of one story (``stored``) under ``title``; ``dates`` is
    shown on the title frame; ``advance_s`` is the timed advance's pace; ``complete=False``
    says on the title frame that the version stopped before its end."""

    closed = Signal()
    slide_changed = Signal(int)

    def __init__(
        self,
        stored: StoredStory,
        title: str,
        dates: str = "",
        *,
        advance_s: float = ADVANCE_S,
        cursor_hide_ms: int = CURSOR_HIDE_MS,
        owner: QWidget | None = None,
        complete: bool | None = None,
    ) -> None:
        # A window of its own, owned by the app's window: it goes when that window goes.
        super().__init__(owner, Qt.WindowType.Window)
        self.setObjectName("presentation")
        self.setWindowTitle(f"{title} – Storyteller")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setStyleSheet(
            f"#presentation {{ background: {BACKGROUND}; }} QLabel {{ color: {INK}; }}"
        )
        self.setAutoFillBackground(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.stored = stored
        self.display = stored.display()
        self.title = title
        self.dates = dates
        # A version stopped at a frame's end parses as complete: the caller knows it stopped.
        self.complete = self.display.complete if complete is None else complete
        self.boxes = photo_boxes(stored)
        self.slides = [Slide("title")]
        self.slides += [
            Slide("frame", frame)
            for frame in self.display.frames
            if frame.index is not None or frame.plain()
        ]
        self.slides.append(Slide("end"))
        self.at = 0
        self.all_boxes = False
        self.mention = -1  # the Tab position among the frame's mentions; -1: none
        self.awake: KeepAwake | None = None
        self.cursor_hidden = False

        self.card = QLabel(self)
        self.card.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.card.setWordWrap(True)
        self.card.setTextFormat(Qt.TextFormat.RichText)
        self.photo = PhotoView(self)
        self.photo.set_placeholder("")
        self.photo.setBackgroundBrush(QBrush(QColor(BACKGROUND)))
        self.photo.setFrameShape(QFrame.Shape.NoFrame)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        self.footer = QLabel(self)
        self.footer.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.footer.setStyleSheet("color: #6b6459;")
        for child in (self.card, self.photo, self.text, self.footer):
            child.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.photo.viewport().setFocusPolicy(Qt.FocusPolicy.NoFocus)

        frame_page = QWidget(self)
        self.frame_layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, frame_page)
        self.frame_layout.addWidget(self.photo, PHOTO_SHARE)
        self.frame_layout.addWidget(self.text, 100 - PHOTO_SHARE)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.card)
        self.stack.addWidget(frame_page)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.footer)

        self.advance_s = advance_s
        self.advance_timer = QTimer(self)
        self.advance_timer.timeout.connect(self._advance)
        self.cursor_timer = QTimer(self)
        self.cursor_timer.setSingleShot(True)
        self.cursor_timer.setInterval(cursor_hide_ms)
        self.cursor_timer.timeout.connect(self._hide_cursor)
        self._apply_sizes()
        self.go_to(0)

    # ---------------------------------------------------------------- showing

    def start(self, screen: QScreen | None = None) -> None:
        """Show full screen on ``screen`` (default: the primary one) and keep it awake."""
        screen = screen or QGuiApplication.primaryScreen()
        self.setScreen(screen)
        self.setGeometry(screen.geometry())
        self.showFullScreen()
        self.raise_()
        self.activateWindow()
        self.setFocus()
        QApplication.instance().installEventFilter(self)
        self.cursor_timer.start()
        self.awake = keep_screen_awake()
        if not self.awake.held:
            logger.info("the screen may go to sleep: %s", self.awake.why_not)

    def go_to(self, index: int) -> None:
        """Show slide ``index`` (clamped to the first and last)."""
        self.at = max(0, min(len(self.slides) - 1, index))
        self.mention = -1
        slide = self.slides[self.at]
        if slide.kind == "frame" and slide.frame is not None:
            self._show_frame(slide.frame)
        else:
            self._show_card(slide.kind)
        self._update_footer()
        if self.advance_timer.isActive():
            self.advance_timer.start()  # a full interval on each frame, however it was reached
        self.slide_changed.emit(self.at)

    def next(self) -> None:
        self.go_to(self.at + 1)

    def previous(self) -> None:
        self.go_to(self.at - 1)

    @property
    def slide(self) -> Slide:
        return self.slides[self.at]

    def _show_card(self, kind: str) -> None:
        self.photo.clear_photo()
        big, small = self._font_px * 2.6, self._font_px * 1.1
        if kind == "title":
            lines = [
                f'<div style="font-size:{big:.0f}px; font-weight:600;">{_esc(self.title)}</div>'
            ]
            if self.dates:
                lines.append(
                    f'<div style="font-size:{small:.0f}px; color:#555;">{_esc(self.dates)}</div>'
                )
            if not self.complete:
                lines.append(
                    f'<div style="font-size:{small:.0f}px; color:#8a5a00;">'
                    "This version is incomplete: the story ends where it stopped.</div>"
                )
        else:
            lines = [
                f'<div style="font-size:{big * 0.8:.0f}px; font-weight:600;">The end</div>',
                f'<div style="font-size:{small:.0f}px; color:#555;">{_esc(self.title)}</div>',
            ]
        self.card.setText("<br>".join(lines))
        self.stack.setCurrentIndex(0)

    def _show_frame(self, frame: DisplayFrame) -> None:
        geometry = self.stored.frame(frame.index) if frame.index is not None else None
        shown = geometry is not None and self.photo.set_photo(geometry.path)
        self.photo.setVisible(shown)
        self.photo.clear_boxes()
        self._show_text(frame)
        self.stack.setCurrentIndex(1)
        self._draw_boxes()

    def _show_text(self, frame: DisplayFrame, selected: str | None = None) -> None:
        one = replace(self.display, frames=(frame,))
        html = render_story(
            one,
            image_width=0,
            links=False,
            headings=False,
            selected_id=selected,
            font_size_pt=self._font_px * 0.75,
        ).html
        self.text.setText(html)

    # ---------------------------------------------------------------- boxes

    def frame_boxes(self) -> dict[str, tuple[float, float, float, float]]:
        """Entity -> its box on the shown frame's photo (fractions of the photo)."""
        frame = self.slide.frame
        if frame is None or frame.index is None or self.photo.photo_item is None:
            return {}
        return dict(self.boxes.get(frame.index, {}))

    def mentions(self) -> list[Mention]:
        """The shown frame's tagged words whose entities have a box on its photo, in reading
        order (what Tab walks through)."""
        frame = self.slide.frame
        boxed = self.frame_boxes()
        if frame is None:
            return []
        return [
            Mention(span.text, tuple(i for i in span.ids if i in boxed))
            for span in frame.spans
            if span.grounded and any(i in boxed for i in span.ids)
        ]

    def toggle_boxes(self) -> None:
        """B: show or hide every box of the frame."""
        self.all_boxes = not self.all_boxes
        self.mention = -1
        if self.slide.frame is not None:
            self._show_text(self.slide.frame)
        self._draw_boxes()
        self._update_footer()

    def step_mention(self, step: int = 1) -> None:
        """Tab / Shift+Tab: the next (previous) mention's boxes alone, its words highlighted."""
        mentions = self.mentions()
        if not mentions:
            return
        self.all_boxes = False
        self.mention = (self.mention + step) % len(mentions)
        mention = mentions[self.mention]
        frame = self.slide.frame
        if frame is not None:
            self._show_text(frame, selected=mention.ids[0])
        self._draw_boxes()
        self._update_footer()

    def _draw_boxes(self) -> None:
        boxed = self.frame_boxes()
        if self.all_boxes:
            ids = list(boxed)
        elif self.mention >= 0:
            mentions = self.mentions()
            ids = list(mentions[self.mention].ids) if self.mention < len(mentions) else []
        else:
            ids = []
        width, height = self.photo.original_size
        self.photo.show_boxes(
            [
                BoxOverlay(
                    entity_id,
                    self.display.name(entity_id),
                    (x1 * width, y1 * height, x2 * width, y2 * height),
                    self.display.colour(entity_id),
                )
                for entity_id in ids
                for x1, y1, x2, y2 in (boxed[entity_id],)
            ]
        )

    # ---------------------------------------------------------------- timed advance

    def set_advance(self, on: bool) -> None:
        """Move on by itself every ``advance_s`` seconds (stops at the end)."""
        if on and self.advance_s > 0:
            self.advance_timer.start(int(self.advance_s * 1000))
        else:
            self.advance_timer.stop()
        self._update_footer()

    def _advance(self) -> None:
        if self.at >= len(self.slides) - 1:
            self.set_advance(False)
            return
        self.next()

    # ---------------------------------------------------------------- input

    def event(self, event: QEvent) -> bool:
        # Tab would move the focus between widgets: here it walks through the mentions.
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab)
        ):
            backwards = event.key() == Qt.Key.Key_Backtab or bool(
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            )
            self.step_mention(-1 if backwards else 1)
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in NEXT_KEYS:
            self.next()
        elif key in PREVIOUS_KEYS:
            self.previous()
        elif key == Qt.Key.Key_Home:
            self.go_to(0)
        elif key == Qt.Key.Key_End:
            self.go_to(len(self.slides) - 1)
        elif key == Qt.Key.Key_B:
            self.toggle_boxes()
        elif key == Qt.Key.Key_P:
            self.set_advance(not self.advance_timer.isActive())
        elif key in (Qt.Key.Key_Escape, Qt.Key.Key_Q):
            self.close()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.next()
        elif event.button() == Qt.MouseButton.RightButton:
            self.previous()
        event.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseMove:
            self._show_cursor()
            self.cursor_timer.start()
        elif (
            event.type() == QEvent.Type.MouseButtonPress
            and isinstance(watched, QWidget)
            and watched is not self
            and self.isAncestorOf(watched)
        ):
            self.mousePressEvent(event)  # type: ignore[arg-type]
            return True
        return False

    def _hide_cursor(self) -> None:
        if not self.cursor_hidden and self.isVisible():
            QApplication.setOverrideCursor(QCursor(Qt.CursorShape.BlankCursor))
            self.cursor_hidden = True

    def _show_cursor(self) -> None:
        if self.cursor_hidden:
            QApplication.restoreOverrideCursor()
            self.cursor_hidden = False

    # ---------------------------------------------------------------- layout

    def resizeEvent(self, event: object) -> None:  # type: ignore[override]
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._apply_sizes()
        self.go_to(self.at)

    def _apply_sizes(self) -> None:
        """A reading type that scales with the screen; the text below the photo on a portrait
        screen."""
        width, height = max(1, self.width()), max(1, self.height())
        self._font_px = max(16.0, min(width, height) / 36)
        portrait = height > width
        self.frame_layout.setDirection(
            QBoxLayout.Direction.TopToBottom if portrait else QBoxLayout.Direction.LeftToRight
        )
        margin = int(self._font_px * 1.2)
        self.frame_layout.setContentsMargins(margin, margin, margin, 0)
        self.frame_layout.setSpacing(margin)
        self.footer.setStyleSheet(f"color: #6b6459; font-size: {self._font_px * 0.6:.0f}px;")

    def _update_footer(self) -> None:
        parts = [f"{self.at + 1} / {len(self.slides)}", "← →", "B boxes", "Tab one by one"]
        parts.append("P stop" if self.advance_timer.isActive() else "P play")
        parts.append("Esc ends")
        self.footer.setText("   ·   ".join(parts))

    def closeEvent(self, event: object) -> None:  # type: ignore[override]
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self._show_cursor()
        self.advance_timer.stop()
        self.cursor_timer.stop()
        if self.awake is not None:
            self.awake.release()
        self.closed.emit()
        super().closeEvent(event)  # type: ignore[arg-type]


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def screen_names(screens: list[QScreen]) -> list[str]:
    """How the screen question names each screen: its name and size."""
    return [
        f"{screen.name() or f'Screen {n}'} ({screen.geometry().width()}×{screen.geometry().height()})"
        for n, screen in enumerate(screens, start=1)
    ]


class PresentationController(QObject):
    """View → Present (F5): the version being read, full screen on the chosen screen."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session
        self.presentation: PresentationWindow | None = None

    def choose_screen(self) -> QScreen | None:
        """The screen to present on: with several, the user picks (a second display, one
        the app's window is not on, is offered first); None when they cancel."""
        screens = QGuiApplication.screens()
        if len(screens) <= 1:
            return QGuiApplication.primaryScreen()
        parent = self._session.dialog_parent
        here = parent.screen() if parent is not None else None
        order = sorted(screens, key=lambda screen: screen is here)
        names = screen_names(order)
        name, ok = QInputDialog.getItem(
            parent, "Present", "Show the story full screen on:", names, 0, False
        )
        return order[names.index(name)] if ok else None

    def present(self, screen: QScreen | None = None) -> PresentationWindow | None:
        """Open the version being read full screen; says in the status bar why not when none
        is open or its text is empty."""
        session = self._session
        shown = session.shown
        if not isinstance(shown, OpenVersion):
            session.show_status("Open a version of the story to present it.")
            return None
        if not any(frame.plain() for frame in shown.stored.display().frames):
            session.show_status("This version has no story text to present.")
            return None
        if screen is None:
            screen = self.choose_screen()
            if screen is None:
                return None
        album = session.album
        title = album.name if album is not None else "Story"
        dates = ""
        if album is not None:
            by_id = {
                p.id: p
                for p in session.try_library(lambda: session.library.photos(album), "Presenting")
                or []
            }
            dates = date_range_text(
                by_id[p.photo_id].captured_at for p in shown.run.photos if p.photo_id in by_id
            )
        if self.presentation is not None:
            self.presentation.close()
        window = PresentationWindow(
            shown.stored,
            title,
            dates,
            owner=session.dialog_parent,
            complete=shown.run.status is RunStatus.COMPLETE and shown.stored.story.complete,
        )
        window.closed.connect(self._closed)
        self.presentation = window
        window.start(screen)
        if window.awake is not None and not window.awake.held:
            session.show_status(
                f"Presenting. The screen may still go to sleep: {window.awake.why_not}."
            )
        else:
            session.show_status("Presenting: Esc ends.")
        return window

    def _closed(self) -> None:
        self.presentation = None
