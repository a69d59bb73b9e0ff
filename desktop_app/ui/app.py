"""Start the desktop application."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


def run_app(argv: list[str]) -> int:
    """Create the QApplication and the main window; return the exit code of the event loop."""
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("Storyteller")
    window = QMainWindow()
    window.setWindowTitle("Storyteller")
    window.setCentralWidget(QLabel("Storyteller"))
    window.resize(1280, 800)
    window.show()
    return app.exec()
