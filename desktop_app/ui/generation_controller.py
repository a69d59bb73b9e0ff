"""Telling the open album's story: the backend, the generation worker and the live run.

``GenerationController`` is a part of the main window. It runs ``app.telling.tell`` in a worker
thread (which records the run, streams the output into the library and stores the outcome, as
``storyteller album tell`` does) and relays its events: the live story view is re-rendered at
most ~10 times a second. What the window shows around a run (the versions list, the album row)
it learns from ``run_started`` and ``run_ended``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.app.costs import cached_parts, run_clock, run_speeds
from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import FrameGeometry
from desktop_app.app.telling import (
    RunEnded,
    RunStarted,
    TellOptions,
    known_photo,
    photos_to_tell,
    tell,
)
from desktop_app.engine.events import (
    NOTHING_CACHED,
    CachedParts,
    Event,
    PhaseEvent,
    ShouldStop,
    StoryBackend,
    StoryRequest,
)
from desktop_app.engine.images import prepared_size_for
from desktop_app.engine.speeds import RunClock, describe
from desktop_app.errors import StorytellerError
from desktop_app.library.records import Photo
from desktop_app.story.model import Story
from desktop_app.story.parser import StoryStreamParser
from desktop_app.ui.errors import show_error
from desktop_app.ui.workers import TellWorker, WorkerHandle

if TYPE_CHECKING:
    from desktop_app.ui.main_window import MainWindow

logger = logging.getLogger(__name__)

RENDER_INTERVAL_MS = 100  # live story re-render: at most ~10 times a second

BackendFactory = Callable[[], StoryBackend]


@dataclass
class LiveRun:
    """The run being generated: its id, the stream parser and speed bookkeeping."""

    album_id: int
    run_id: int
    frame_count: int
    parser: StoryStreamParser
    frame_photos: dict[int, FrameGeometry]
    tokens: int = 0
    first_token_at: float | None = None
    dirty: bool = False  # tokens arrived since the last render
    clock: RunClock | None = None  # the remaining time (None: unknown, e.g. a server)

    def remaining(self) -> str:
        """`` · about 4 min left`` while the remaining time is known, else ""."""
        if self.clock is None:
            return ""
        seconds = self.clock.remaining_s()
        return f" · {describe(seconds, measured=self.clock.speeds.measured, left=True)}"

    def tokens_per_s(self) -> float:
        """Decoding speed since the first token."""
        if self.first_token_at is None or self.tokens < 2:
            return 0.0
        elapsed = time.perf_counter() - self.first_token_at
        return (self.tokens - 1) / elapsed if elapsed > 0 else 0.0


class GenerationController(QObject):
    """Owns the backend, the generation worker and the run being written."""

    run_started = Signal(int, int)  # album id, run id: the new version is in the library
    # LiveRun, the stored run (or None), its StoredStory (None: not parsed), failed
    run_ended = Signal(object, object, object, bool)
    state_changed = Signal()  # generating or stopping changed: actions follow

    def __init__(self, window: MainWindow, backend_factory: BackendFactory) -> None:
        super().__init__(window)
        self._window = window
        self._backend_factory = backend_factory
        self._backend: StoryBackend | None = None
        self._generation: WorkerHandle | None = None
        self._stopping = False
        self._next_cached = NOTHING_CACHED  # what the run being started will find cached
        self.live: LiveRun | None = None
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self.render_live)

    # ---------------------------------------------------------------- state

    def is_generating(self) -> bool:
        """True while a story is being written."""
        return self._generation is not None

    def is_stopping(self) -> bool:
        """True once Stop was asked for and the run has not ended yet."""
        return self._stopping

    def cached(self, photos: Sequence[Photo]) -> CachedParts:
        """What the next run over ``photos`` (album order, the toolbar's choices) would find
        cached, as the backend says. Nothing before the backend exists, and nothing while a run
        is in progress: the backend's caches belong to its worker then (not thread-safe)."""
        if self._backend is None or self.is_generating():
            return NOTHING_CACHED
        request = self.options().request(
            [photo.path for photo in photos], [known_photo(photo) for photo in photos]
        )
        return cached_parts(self._backend, request)

    def backend(self) -> StoryBackend:
        """The backend, created on first use (in the worker thread: loading can take a while)."""
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def replace_backend(self, factory: BackendFactory) -> None:
        """Use another backend from the next run on (settings changed)."""
        if self._backend is not None and not self.is_generating():
            self._backend.close()
            self._backend = None
        self._backend_factory = factory

    def close_backend(self) -> None:
        """Free the backend (the window closes)."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # ---------------------------------------------------------------- a run

    def options(self) -> TellOptions:
        """How the next story is told: the settings, with the toolbar's preset, detail and seed."""
        window = self._window
        settings = (window.settings or Settings()).replace(
            **window.story_toolbar.choices(), max_tokens=window.max_tokens()
        )
        return TellOptions.from_settings(settings, instruction=window.story_toolbar.instruction())

    def generate(self) -> None:
        """Start telling the story of the current album's photos (all of them: an album with a
        missing photo is refused with a message saying which and what to do)."""
        window = self._window
        album_id = window.current_album_id
        if self.is_generating() or album_id is None:
            return
        if not window.photo_model.photos():
            window.show_status("Add photos to the album first.")
            return
        try:
            photos = photos_to_tell(window.library, album_id)
        except StorytellerError as err:
            show_error(window, err, action="Starting the story")
            return
        self._next_cached = self.cached(photos)  # asked now: the worker owns the backend soon
        options = self.options()
        window.remember_choices()
        library, backend = window.library, _LazyBackend(self)
        handle = window.workers.start(
            TellWorker(
                lambda should_stop: tell(
                    library, album_id, backend, options, should_stop=should_stop
                )
            )
        )
        handle.item.connect(self._on_started)
        handle.phase.connect(self._on_phase)
        handle.token.connect(self._on_token)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        self._generation = handle
        window.story_toolbar.show_progress(0, 0)
        window.story_toolbar.show_phase("Starting…")
        self._render_timer.start()
        self.state_changed.emit()

    def _on_started(self, event: RunStarted) -> None:
        """The run is in the library: show it being written."""
        window = self._window
        budget = event.request.detail.token_budget
        frame_photos = {
            index: FrameGeometry(
                index, p.path, (p.width, p.height), prepared_size_for((p.width, p.height), budget)
            )
            for index, p in enumerate(event.photos, start=1)
        }
        self.live = LiveRun(
            event.album.id, event.run_id, len(event.photos), StoryStreamParser(), frame_photos
        )
        sized = [i for i, p in enumerate(event.photos) if p.width and p.height]
        self.live.clock = run_clock(
            run_speeds(window.settings),
            [(event.photos[i].width, event.photos[i].height) for i in sized],
            event.request.detail,
            event.request.sampling.max_tokens,
            self._next_cached.select(sized),
        )
        if event.album.id == window.current_album_id:
            window.current_run = None  # the panels now show the run being written
            window.story_panel.set_frame_photos(frame_photos)
            window.analysis_panel.set_frame_photos(frame_photos)
            window.story_panel.clear("Starting…")
            window.tabs.setCurrentWidget(window.story_panel)
        self.run_started.emit(event.album.id, event.run_id)

    def stop(self) -> None:
        """Stop writing at the next token; the story so far becomes a stopped version."""
        if self._generation is None:
            return
        self._generation.cancel()
        self._window.story_toolbar.show_phase("Stopping…")
        self._stopping = True
        self.state_changed.emit()

    def _on_phase(self, event: PhaseEvent) -> None:
        if self.live is None:
            return
        if self.live.clock is not None:
            self.live.clock.on_phase(event.phase, event.index)
        self._window.story_toolbar.show_phase(
            event.describe().capitalize() + "…" + self.live.remaining()
        )
        self._window.story_toolbar.show_progress(event.index, event.total or 0)

    def _on_token(self, text: str) -> None:
        live = self.live
        if live is None:
            return
        if live.first_token_at is None:
            live.first_token_at = time.perf_counter()
        live.tokens += 1
        if live.clock is not None:
            live.clock.on_tokens(1)
        live.parser.feed(text)  # the worker has written it to the library already
        live.dirty = True

    # ---------------------------------------------------------------- the live view

    def show_live(self) -> None:
        """Show the story being written (after looking at another album or version)."""
        live = self.live
        if live is None:
            return
        window = self._window
        window.current_run = None
        window.story_panel.set_frame_photos(live.frame_photos)
        window.analysis_panel.set_frame_photos(live.frame_photos)
        live.dirty = True
        self.render_live()

    def render_live(self) -> None:
        """Re-render the story being written, if it is on screen and new tokens came."""
        live = self.live
        window = self._window
        if live is None or not live.dirty or live.album_id != window.current_album_id:
            return  # (the user is looking at another album: render when they come back)
        if window.current_run is not None and window.current_run.id != live.run_id:
            return  # an older version of this album is open
        live.dirty = False
        story = live.parser.snapshot()
        window.current_story = story
        window.story_panel.set_story(story, live=True, frame_count=live.frame_count)
        if window.tabs.currentWidget() is window.analysis_panel:
            window.analysis_panel.set_story(story, {})
        window.story_toolbar.show_phase(live_phase(story, live))
        window.story_toolbar.show_progress(live_progress(story, live), live.frame_count * 2)

    # ---------------------------------------------------------------- the end of a run

    def _end(self) -> LiveRun | None:
        live = self.live
        self.live = None
        self._generation = None
        self._stopping = False
        self._render_timer.stop()
        self._window.story_toolbar.hide_progress()
        self._window.filmstrip.update_cost()  # the time estimate now has this run's speeds
        self.state_changed.emit()
        return live

    def _on_finished(self, ended: RunEnded) -> None:
        live = self._end()
        if live is None:
            return
        window = self._window
        result = ended.result
        if result is None:  # the backend gave no result: the run is stored as failed
            window.story_toolbar.show_phase("Failed")
            show_error(window, StorytellerError(ended.run.error), action="Writing the story")
            self.run_ended.emit(live, ended.run, ended.story, True)
            return
        speed = result.timings.tokens_per_s or live.tokens_per_s()
        window.status_bar.set_speed(speed)
        window.status_bar.set_backend(result.backend, result.model)
        verb = "Stopped" if result.cancelled else "Finished"
        window.story_toolbar.show_phase(
            f"{verb}: {result.timings.generated_tokens or live.tokens} tokens, {speed:.1f} tokens/s"
        )
        self.run_ended.emit(live, ended.run, ended.story, False)

    def _on_failed(self, err: BaseException, details: str) -> None:
        live = self._end()
        window = self._window
        run = None
        if live is not None:  # the worker has stored the run as failed
            try:
                run = window.library.run(live.run_id)
                if live.tokens == 0:
                    # Nothing was written (a server down...): no version to keep.
                    window.library.delete_run(live.run_id)
                    window.run_model.remove(live.run_id)
                    run = None
            except StorytellerError:
                logger.warning("could not forget the failed run %s", live.run_id)
        window.story_toolbar.show_phase("Failed")
        show_error(window, err, details, action="Writing the story")
        if live is not None:
            self.run_ended.emit(live, run, None, True)


def live_phase(story: Story, live: LiveRun) -> str:
    """The phase line while writing: where the model is, its speed and the tokens so far."""
    speed = live.tokens_per_s()
    rate = f" · {speed:.1f} tokens/s" if speed else ""
    if story.segments:
        frame = story.segments[-1].image or len(story.segments)
        where = f"Writing frame {frame}/{live.frame_count}"
    elif story.narrative:
        where = "Planning the narrative"
    elif story.frames:
        where = f"Analysing frame {story.frames[-1].index}/{live.frame_count}"
    else:
        where = "Analysing"
    return f"{where}{rate} · {live.tokens} tokens{live.remaining()}"


def live_progress(story: Story, live: LiveRun) -> int:
    """Progress in half-frames: the analysis of each frame, then its text."""
    if story.segments:
        return live.frame_count + min(live.frame_count, len(story.segments))
    return min(live.frame_count, len(story.frames))


class _LazyBackend:
    """Creates the controller's backend on first use, in the worker thread; shows the files it
    loads, so the run records the model's identity."""

    def __init__(self, controller: GenerationController) -> None:
        self._controller = controller

    @property
    def description(self) -> str:
        return self._controller.backend().description

    @property
    def model_path(self) -> Path | None:
        return getattr(self._controller.backend(), "model_path", None)

    @property
    def mmproj_path(self) -> Path | None:
        return getattr(self._controller.backend(), "mmproj_path", None)

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        return self._controller.backend().generate(request, should_stop=should_stop)

    def close(self) -> None:
        pass
