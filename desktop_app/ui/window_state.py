"""The main window's layout between sessions: its geometry, its splitters and the open album,
kept in ``window.ini`` in the configuration folder."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from desktop_app import paths


class WindowState:
    """Saves and restores ``window``'s geometry, the ``splitters`` (by name) and an album id."""

    def __init__(self, window: QMainWindow, splitters: Mapping[str, QSplitter]) -> None:
        self._window = window
        self._splitters = dict(splitters)

    @staticmethod
    def _store() -> QSettings:
        return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def restore(self) -> int | None:
        """Size, panel sizes and album of the last session; returns that album's id."""
        state = self._store()
        restorers = {"geometry": self._window.restoreGeometry}
        restorers.update({name: s.restoreState for name, s in self._splitters.items()})
        for key, restore in restorers.items():
            value = state.value(key)
            if isinstance(value, QByteArray):
                restore(value)
        album = state.value("album")
        try:
            return int(album) if album is not None else None
        except (TypeError, ValueError):
            return None

    def save(self, album_id: int | None) -> None:
        """Keep the window's layout (and ``album_id``, when there is one) for the next session."""
        state = self._store()
        state.setValue("geometry", self._window.saveGeometry())
        for name, splitter in self._splitters.items():
            state.setValue(name, splitter.saveState())
        if album_id is not None:
            state.setValue("album", album_id)
        state.sync()
