"""What the window's parts share, on the Qt side: the library, the settings, the engine, the open
album, the open version and the run being written, with a signal for every change.

Parts (sidebar, filmstrip, toolbar, story tabs, status bar, controllers) are built with the
``Session`` and subscribe to it; none of them holds the main window or reaches a sibling. A part
that changes shared state does it through the session, which tells every other part. The main
window only builds the parts, wires what is left of their own signals, and closes them.

The open version is either a stored run (``OpenVersion``) or the run being written
(``LiveRun``); the story tabs show whichever it is.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from desktop_app.app.estimates import RunProgress, cached_parts
from desktop_app.app.settings import Settings, save_settings
from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.app.telling import TellOptions, known_photo
from desktop_app.engine.api import (
    DEFAULT_INSTRUCTION,
    NOTHING_CACHED,
    CachedParts,
    Detail,
    PhaseEvent,
    Preset,
    ShouldStop,
    StoryBackend,
    TokenEvent,
)
from desktop_app.engine.speeds import RunClock
from desktop_app.errors import StorytellerError
from desktop_app.library.records import Album, Photo, StoryRun
from desktop_app.library.store import Library
from desktop_app.story.model import Issue, Story
from desktop_app.story.parser import StoryStreamParser
from desktop_app.ui.error_dialog import show_error
from desktop_app.ui.item_models import AlbumListModel, PhotoListModel, RunListModel
from desktop_app.ui.workers import Worker, WorkerHandle, WorkerPool

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Builds the story backend the settings describe; called in a worker (it may read model files).
BackendFactory = Callable[[Settings], StoryBackend]
# Asks the user (parent, title, text, the verb of the action) and says whether to go ahead.
Confirm = Callable[[QWidget | None, str, str, str], bool]


@dataclass(frozen=True)
class RunChoices:
    """The choices of the next run the toolbar offers (the rest comes from the settings)."""

    preset: Preset
    detail: Detail
    seed: int | None
    instruction: str

    @classmethod
    def of_settings(cls, settings: Settings) -> RunChoices:
        return cls(settings.preset, settings.detail, settings.seed, DEFAULT_INSTRUCTION)

    def settings_fields(self) -> dict[str, Any]:
        """The choices the next session starts with, as ``Settings`` fields."""
        return {"preset": self.preset, "detail": self.detail, "seed": self.seed}


@dataclass(frozen=True)
class OpenVersion:
    """A stored version on screen: its run and its story, parsed, checked and named."""

    run: StoryRun
    stored: StoredStory

    @property
    def story(self) -> Story:
        return self.stored.story

    @property
    def issues(self) -> list[Issue]:
        return list(self.stored.issues)

    @property
    def frames(self) -> dict[int, FrameGeometry]:
        return {frame.index: frame for frame in self.stored.frames}


class LiveRun:
    """The run being written: its album and run ids, the story so far, its phase and progress
    (the real token count, the speed and the time left, as the CLI counts them)."""

    def __init__(
        self,
        album_id: int,
        run_id: int,
        frames: dict[int, FrameGeometry],
        clock: RunClock | None = None,
    ) -> None:
        self.album_id = album_id
        self.run_id = run_id
        self.frames = frames
        self.frame_count = len(frames)
        self.parser = StoryStreamParser()
        self.story = Story()
        self.progress = RunProgress(clock)
        self.dirty = False  # text arrived since the last snapshot
        self.phase_text = "Starting…"
        self.bar = (0, 0)  # progress bar: value, maximum (0: busy, no known end)

    @property
    def tokens(self) -> int:
        """Tokens written so far (the engine's count, not text pieces)."""
        return self.progress.tokens

    def on_event(self, event: PhaseEvent | TokenEvent) -> None:
        """A phase or more text of the run."""
        self.progress.on_event(event)
        if isinstance(event, TokenEvent):
            self.parser.feed(event.text)
            self.dirty = True

    def remaining(self) -> str:
        """`` · about 4 min left`` while the remaining time is known, else ""."""
        left = self.progress.remaining()
        return f" · {left}" if left else ""

    def tokens_per_s(self) -> float:
        """Writing speed since the first token."""
        return self.progress.tokens_per_s()


@dataclass(frozen=True)
class EndedRun:
    """A run that ended: the live run it was (None: it failed before it was recorded), the
    stored version (None: not kept), the toolbar's last line, and its speed and engine."""

    live: LiveRun | None
    run: StoryRun | None
    stored: StoredStory | None
    failed: bool
    phase_text: str
    tokens_per_s: float = 0.0
    backend: str = ""
    model: str = ""


Shown = OpenVersion | LiveRun | None


class EngineSlot:
    """The story backend of this session, created on first use in a worker thread and kept
    between runs (its caches make the next run faster)."""

    def __init__(self, factory: BackendFactory) -> None:
        self._factory = factory
        self._backend: StoryBackend | None = None
        self._stale = False  # the settings changed while a run used the backend
        self._lock = threading.Lock()
        self._in_use = threading.Lock()  # held by the job using the backend (``using``)

    def get(self, settings: Settings) -> StoryBackend:
        """The backend, created from ``settings`` if none exists (call it in a worker)."""
        with self._lock:
            if self._stale and self._backend is not None:
                self._backend.close()
                self._backend = None
            self._stale = False
            if self._backend is None:
                self._backend = self._factory(settings)
            return self._backend

    def existing(self) -> StoryBackend | None:
        """The backend if one was created."""
        return self._backend

    @contextlib.contextmanager
    def using(self, settings: Settings, should_stop: ShouldStop) -> Iterator[StoryBackend | None]:
        """The backend (created from ``settings`` if none exists) for one job at a time: a
        backend is not thread-safe. Waits while another job uses it (a preparation cancelled by
        Generate ends within one batch), unless ``should_stop`` turns true first (then None)."""
        while not self._in_use.acquire(timeout=0.05):
            if should_stop():
                yield None
                return
        try:
            yield self.get(settings)
        finally:
            self._in_use.release()

    @contextlib.contextmanager
    def using_now(self) -> Iterator[StoryBackend | None]:
        """The existing backend if no job uses it now, else None (asked from the GUI thread,
        which never waits for a job)."""
        if not self._in_use.acquire(blocking=False):
            yield None
            return
        try:
            yield self._backend
        finally:
            self._in_use.release()

    def replace(self, *, busy: bool = False) -> None:
        """Make the next run's backend afresh (the settings changed); the backend is closed now,
        unless a run uses it (``busy``): then it is closed when the next run starts."""
        if busy or self._in_use.locked():  # a run or a preparation uses it now
            self._stale = True
        else:
            self.close()

    def close(self) -> None:
        """Free the backend."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()


class Session(QObject):
    """The library, settings, engine, open album, open version and live run of one window."""

    album_opened = Signal(object)  # Album | None
    album_created = Signal(object)  # Album: the album list shows it and opens it
    album_renamed = Signal(object)  # the open album's record after a rename (its title only)
    album_changed = Signal(int)  # an album's counts (photos, stories, missing) changed
    photos_changed = Signal(int)  # album id whose photos changed (added, removed, relinked)
    versions_changed = Signal(int)  # album id whose list of versions must be read again
    version_opened = Signal(object)  # Shown: what the story tabs show now
    versions_selected = Signal(list)  # StoryRun records selected in the versions list
    names_changed = Signal(object)  # the open version's display names after a rename
    run_requested = Signal()  # Generate was pressed: the run starts once the backend is ready
    run_started = Signal(object)  # LiveRun
    run_progressed = Signal(object)  # LiveRun: its phase, progress or speed changed
    live_story_changed = Signal(object)  # LiveRun: more of its story is written
    run_ended = Signal(object)  # EndedRun
    choices_changed = Signal()  # the next run's choices (toolbar)
    settings_changed = Signal(object)  # Settings
    library_changed = Signal()  # another library was opened
    state_changed = Signal()  # what the user may do changed: the actions follow
    status_message = Signal(str)  # a passing message for the status bar

    def __init__(
        self,
        library: Library,
        backend_factory: BackendFactory,
        settings: Settings | None = None,
        *,
        confirm: Confirm | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.settings = settings if settings is not None else Settings()
        # Only a session started from saved settings writes them back (tests pass none).
        self._persist_settings = settings is not None
        self.engine = EngineSlot(backend_factory)
        self.workers = WorkerPool(self)
        self.album_model = AlbumListModel(self)
        self.photo_model = PhotoListModel(self)
        self.run_model = RunListModel(self)
        self.album: Album | None = None
        self.shown: Shown = None
        self.live: LiveRun | None = None
        self.stopping = False
        self.selected_runs: list[StoryRun] = []
        self.choices = RunChoices.of_settings(self.settings)
        self.closing = False  # no message boxes once the window is being closed
        self.dialog_parent: QWidget | None = None  # where dialogs open (set by the window)
        self._confirm = confirm or _ask_to_act
        self.photos_changed.connect(self._on_photos_changed)

    # ---------------------------------------------------------------- the open album

    @property
    def album_id(self) -> int | None:
        return self.album.id if self.album is not None else None

    def open_album(self, album: Album | None) -> None:
        """Open ``album`` (None: none) with its photos; every part shows it."""
        self.album = album
        if album is None:
            self.photo_model.set_photos([])
        else:
            self.reload_photos()
        self.album_opened.emit(album)
        self.state_changed.emit()

    def reload_photos(self) -> None:
        """Read the open album's photos again (the photo model is reset)."""
        photos = self.read_open_album(lambda lib, album: lib.photos(album), "Reading the album")
        if photos is not None and self.album is not None:
            self.photo_model.set_photos(photos)
            # What the strip notices (a photo gone missing) the album list shows at once.
            self.album_changed.emit(self.album.id)
            self.state_changed.emit()

    def _on_photos_changed(self, album_id: int) -> None:
        if album_id == self.album_id:
            self.reload_photos()

    def rename_open_album(self, album: Album) -> None:
        """The open album's record after a rename."""
        if album.id == self.album_id:
            self.album = album
            self.album_renamed.emit(album)  # not album_opened: nothing else is read again

    def create_album(self, name: str) -> Album | None:
        """Create an album named ``name`` and open it; None (after telling why) if it failed."""
        album = self.try_library(lambda: self.library.create_album(name), "Creating the album")
        if album is not None:
            self.album_model.update_album(album, 0)
            self.open_album(album)
            self.album_created.emit(album)
        return album

    def unique_album_name(self, base: str = "New album") -> str:
        """``base``, or "``base`` N" with the first N no album is called yet."""
        names = {album.name for album in self.album_model.albums()}
        if base not in names:
            return base
        n = 2
        while f"{base} {n}" in names:
            n += 1
        return f"{base} {n}"

    def ensure_album(self) -> int | None:
        """The open album's id, creating ("New album N") and opening one if none is open."""
        if self.album_id is None:
            self.create_album(self.unique_album_name())
        return self.album_id

    # ---------------------------------------------------------------- the open version

    @property
    def open_run(self) -> StoryRun | None:
        """The stored version on screen (None while the run being written is shown)."""
        return self.shown.run if isinstance(self.shown, OpenVersion) else None

    def shown_story(self) -> tuple[Story, dict[int, FrameGeometry]] | None:
        """The story on screen (stored or being written) and its frames' photos."""
        if isinstance(self.shown, OpenVersion):
            return self.shown.story, self.shown.frames
        if isinstance(self.shown, LiveRun):
            return self.shown.story, self.shown.frames
        return None

    def show(self, shown: Shown) -> None:
        """Put ``shown`` on screen (a stored version, the run being written, or nothing)."""
        self.shown = shown
        self.version_opened.emit(shown)
        self.state_changed.emit()

    def showing_live(self, live: LiveRun) -> bool:
        """True when ``live`` is on screen."""
        return self.shown is live

    def select_versions(self, runs: Sequence[StoryRun]) -> None:
        """The versions selected in the versions list (newest first)."""
        self.selected_runs = list(runs)
        self.versions_selected.emit(self.selected_runs)
        self.state_changed.emit()

    # ---------------------------------------------------------------- the next run

    def set_choices(self, choices: RunChoices) -> None:
        if choices != self.choices:
            self.choices = choices
            self.choices_changed.emit()

    def tell_options(self) -> TellOptions:
        """How the next story is told: the settings, with the toolbar's choices."""
        settings = self.settings.replace(**self.choices.settings_fields())
        return TellOptions.from_settings(settings, instruction=self.choices.instruction)

    def cached(self, photos: Sequence[Photo]) -> CachedParts:
        """What the next run over ``photos`` would find cached, as the backend says. Nothing
        before the backend exists, and nothing while a run is in progress: the backend's caches
        belong to its worker then (they are not thread-safe)."""
        if self.live is not None:
            return NOTHING_CACHED
        request = self.tell_options().request(
            [photo.path for photo in photos], [known_photo(photo) for photo in photos]
        )
        with self.engine.using_now() as backend:  # not while a preparation uses it
            return NOTHING_CACHED if backend is None else cached_parts(backend, request)

    def remember_choices(self) -> None:
        """Keep the toolbar's preset, detail and seed as the defaults of the next session."""
        chosen = self.choices.settings_fields()
        if all(getattr(self.settings, key) == value for key, value in chosen.items()):
            return
        settings = self.settings.replace(**chosen)
        if self._persist_settings:
            try:
                save_settings(settings)
            except (StorytellerError, OSError) as err:
                self.show_status(f"Could not save your choices: {err}")
                return
        self.settings = settings

    # ---------------------------------------------------------------- settings and library

    def apply_settings(self, settings: Settings) -> None:
        """Saved settings: the engine and the library follow (the library only when no story
        is being written)."""
        old_library = self.settings.library_dir
        self.settings = settings
        self._persist_settings = True
        self.engine.replace(busy=self.live is not None)
        self.settings_changed.emit(settings)
        if settings.library_dir != old_library and self.live is None:
            from desktop_app.app.settings import open_library

            try:
                library = open_library(settings)
            except StorytellerError as err:
                self.report_error(err, action="Opening the library")
                return
            self.library.close()
            self.library = library
            self.album = None
            self.library_changed.emit()

    # ---------------------------------------------------------------- services

    def show_status(self, message: str) -> None:
        """A passing message in the status bar."""
        self.status_message.emit(message)

    def report_error(self, err: BaseException, details: str = "", *, action: str = "") -> None:
        """Tell the user that ``action`` failed and why (the one road to the error dialog); while
        the window closes (logout, SIGTERM) nothing may wait for a click: the log gets it."""
        if self.closing:
            logger.warning("%s failed while closing: %s", action or "a job", err)
            return
        show_error(self.dialog_parent, err, details, action=action)

    def ask(self, title: str, text: str, *, action: str) -> bool:
        """Ask the user whether to do ``action``: its button says the verb ("Stop and quit"),
        beside Cancel, which is the default. While the window closes the answer is Cancel: no
        question may hold up a logout."""
        if self.closing:
            return False
        return self._confirm(self.dialog_parent, title, text, action)

    def try_library(self, call: Callable[[], T], action: str) -> T | None:
        """``call()``'s result; None, after telling the user "``action`` failed", when it raises
        a ``StorytellerError``."""
        try:
            return call()
        except StorytellerError as err:
            self.report_error(err, action=action)
            return None

    def read_open_album(
        self, read: Callable[[Library, int], list[T]], action: str
    ) -> list[T] | None:
        """``read(library, album_id)`` for the open album: None when no album is open, and an
        empty list (after telling the user "``action`` failed") when the library fails."""
        album_id = self.album_id
        if album_id is None:
            return None
        library = self.library
        return self.try_library(lambda: read(library, album_id), action) or []

    def start_job(self, worker: Worker, action: str | None, busy: bool = False) -> WorkerHandle:
        """Start ``worker``; failures are shown as "``action`` failed", and with ``busy`` its
        progress lines go to the status bar."""
        handle = self.workers.start(worker)
        if action is not None:
            handle.failed.connect(
                lambda err, details: self.report_error(err, details, action=action)
            )
            if busy:
                handle.progress.connect(lambda _p, message: self.show_status(message))
        return handle

    def close(self) -> None:
        """Stop every job and free the engine (the window closes)."""
        self.closing = True
        # Every job checks its cancel flag between steps (an import between files), so this
        # returns after the current file or token, not when a big folder is done.
        self.workers.stop_all()
        self.engine.close()


def _ask_to_act(parent: QWidget | None, title: str, text: str, action: str) -> bool:
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton)
    if parent is not None:
        box.setParent(parent, box.windowFlags())
    box.setObjectName("confirmAction")
    go = box.addButton(action, QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return box.clickedButton() is go
