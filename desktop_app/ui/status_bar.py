"""The status bar: the session's passing messages, the run being written (its phase line and
progress bar) and the backend, model and speed of the last run.

The run's progress lives here, in the permanent part of the bar, so that it is visible at any
window width (a toolbar would hide it in its overflow menu on a small screen).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QStatusBar, QWidget

from desktop_app.app.backends import describe_settings_backend
from desktop_app.app.settings import Settings
from desktop_app.library.records import Album
from desktop_app.ui.session import EndedRun, LiveRun, Session

MESSAGE_MS = 8000  # how long a passing message stays
PROGRESS_PX = 160  # the progress bar's width: fixed, so it does not move as the phase changes
SQUEEZED_PX = 60  # the narrowest an engine or model name gets when the window is small


class SqueezableLabel(QLabel):
    """A one-line label that may get narrower than its text, then shows it elided (with its
    whole text as the tooltip): the status bar's engine and model names give way first."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), SQUEEZED_PX), hint.height())

    def paintEvent(self, _event: QPaintEvent) -> None:
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideMiddle, rect.width()
        )
        painter = QPainter(self)
        self.style().drawItemText(
            painter,
            rect,
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            self.palette(),
            self.isEnabled(),
            text,
            self.foregroundRole(),
        )

    def is_elided(self) -> bool:
        """True when the label is too narrow for its text."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()


class RunProgress(QWidget):
    """The run being written: its phase line ("Writing frame 2/4 · 9.1 tokens/s") and a
    progress bar of a fixed width; after the run, how it ended, until another album opens."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runProgress")
        self._session = session
        self._running = False
        self._album_id: int | None = None
        self._widest = 0  # the phase line only widens during a run: the bar beside it stays put
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.phase_label = QLabel("")
        self.phase_label.setObjectName("phaseLabel")
        self.phase_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setObjectName("runProgressBar")
        self.progress_bar.setFixedWidth(PROGRESS_PX)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setVisible(False)
        layout.addWidget(self.phase_label)
        layout.addWidget(self.progress_bar)
        session.run_requested.connect(self._on_run_requested)
        session.run_started.connect(self._on_run_started)
        session.run_progressed.connect(self._on_run_progressed)
        session.run_ended.connect(self._on_run_ended)
        session.album_opened.connect(self._on_album_opened)

    def _on_run_requested(self) -> None:
        self._running = True
        self._widest = 0
        self.show_progress(0, 0)
        self.show_phase("Starting…")

    def _on_run_started(self, live: LiveRun) -> None:
        self.show_progress(0, 0)
        self.show_phase(live.phase_text)

    def _on_run_progressed(self, live: LiveRun) -> None:
        self.show_phase(live.phase_text)
        self.show_progress(*live.bar)

    def _on_run_ended(self, ended: EndedRun) -> None:
        self._running = False
        self.hide_progress()
        self.show_phase(ended.phase_text)

    def _on_album_opened(self, album: Album | None) -> None:
        album_id = album.id if album is not None else None
        if album_id != self._album_id and not self._running:
            self.show_phase("")  # how the last run ended belongs to the album it was told for
            self._widest = 0
            self.phase_label.setMinimumWidth(0)
        self._album_id = album_id

    def show_phase(self, text: str) -> None:
        """The phase line ("Writing frame 2/4 · 9.1 tokens/s")."""
        self.phase_label.setText(text)
        width = self.phase_label.fontMetrics().horizontalAdvance(text)
        if self._running and width > self._widest:
            self._widest = width
            self.phase_label.setMinimumWidth(width)

    def show_progress(self, value: int, maximum: int) -> None:
        """Show the progress bar at ``value`` of ``maximum`` (0: busy, no known end)."""
        self.progress_bar.setRange(0, maximum)
        if maximum:
            self.progress_bar.setValue(value)
        self.progress_bar.setVisible(True)

    def hide_progress(self) -> None:
        """Hide the progress bar (nothing runs)."""
        self.progress_bar.setVisible(False)


class StatusBar(QStatusBar):
    """Passing messages on the left; the run's progress, the backend/device, the model and the
    last speed on the right."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_progress = RunProgress(session, self)
        self.backend_label = SqueezableLabel("")
        self.backend_label.setObjectName("backendLabel")
        self.model_label = SqueezableLabel("")
        self.model_label.setObjectName("modelLabel")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.addPermanentWidget(self.run_progress)
        for label in (self.backend_label, self.model_label, self.speed_label):
            self.addPermanentWidget(label)
        self.set_backend("", "")
        session.status_message.connect(self.show_status)
        session.settings_changed.connect(self._on_settings)
        session.run_ended.connect(self._on_run_ended)

    @property
    def phase_label(self) -> QLabel:
        """The run's phase line."""
        return self.run_progress.phase_label

    @property
    def progress_bar(self) -> QProgressBar:
        """The run's progress bar."""
        return self.run_progress.progress_bar

    def _on_settings(self, settings: Settings) -> None:
        self.set_backend(describe_settings_backend(settings), "")

    def _on_run_ended(self, ended: EndedRun) -> None:
        if ended.failed:
            return
        self.set_speed(ended.tokens_per_s)
        self.set_backend(ended.backend, ended.model)

    def show_status(self, message: str) -> None:
        """A passing message."""
        self.showMessage(message, MESSAGE_MS)

    def set_backend(self, backend: str, model: str) -> None:
        """Show the backend/device and the model."""
        self.backend_label.setText(backend or "no model loaded yet")
        self.backend_label.setToolTip("The engine and the device it runs on")
        self.model_label.setText(f"model: {model}" if model else "")
        self.model_label.setToolTip(model)

    def set_speed(self, tokens_per_s: float) -> None:
        """Show the decoding speed of the run that just ended."""
        self.speed_label.setText(f"last run {tokens_per_s:.1f} tokens/s")
