"""Help → About Storyteller: what the app is, its version, and where its guide is."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

import desktop_app


def about_html() -> str:
    """The About text: name, version, what it does, the model and the guide."""
    return (
        f"<h2>Storyteller {html.escape(desktop_app.__version__)}</h2>"
        "<p>Turns a photo album into a grounded story, offline: every person and thing the "
        "story names is tied to a box on your photos.</p>"
        "<p>The story is told by <b>QwenStoryteller</b> (Qwen2.5-VL) running on this computer "
        "with llama.cpp; nothing is uploaded.</p>"
        "<p>New here? <b>Help → First-run guide</b> sets up the model; "
        "<b>Help → Keyboard shortcuts</b> lists every key.</p>"
    )


class AboutDialog(QDialog):
    """The app's name, version and a few words on what it does."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About Storyteller")
        self.text = QLabel(about_html())
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(420)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
