"""The status bar: the session's passing messages, and the backend, model and speed of the last
run."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from desktop_app.app.backends import describe_settings_backend
from desktop_app.app.settings import Settings
from desktop_app.ui.session import EndedRun, Session

MESSAGE_MS = 8000  # how long a passing message stays


class StatusBar(QStatusBar):
    """Passing messages on the left; backend/device, model and last speed on the right."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend_label = QLabel("")
        self.backend_label.setObjectName("backendLabel")
        self.model_label = QLabel("")
        self.model_label.setObjectName("modelLabel")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        for label in (self.backend_label, self.model_label, self.speed_label):
            self.addPermanentWidget(label)
        self.set_backend("", "")
        session.status_message.connect(self.show_status)
        session.settings_changed.connect(self._on_settings)
        session.run_ended.connect(self._on_run_ended)

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

    def set_speed(self, tokens_per_s: float) -> None:
        """Show the decoding speed of the run that just ended."""
        self.speed_label.setText(f"last run {tokens_per_s:.1f} tokens/s")
