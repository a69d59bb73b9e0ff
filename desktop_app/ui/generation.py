"""Telling the open album's story in a worker thread, and the run being written.

``GenerationController`` is built with the session. It starts ``app.telling.tell`` in a
``TellWorker`` (a thin relay), keeps the ``LiveRun`` (the stream parser, the real token count,
the remaining time) and tells the session when the run starts, progresses and ends; the toolbar,
the story tabs, the versions and the status bar follow those signals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.app.estimates import plan_run
from desktop_app.app.stored_story import FrameGeometry
from desktop_app.app.telling import (
    RunDiscarded,
    RunEnded,
    RunStarted,
    TellEvent,
    low_space_before_run,
    photos_to_tell,
    tell,
)
from desktop_app.engine.api import NOTHING_CACHED, PhaseEvent, ShouldStop, TokenEvent
from desktop_app.engine.images import prepared_size_for
from desktop_app.errors import StorytellerError
from desktop_app.library.errors import PhotoMissingError
from desktop_app.story.model import Story
from desktop_app.ui.session import EndedRun, LiveRun, Session
from desktop_app.ui.workers import TellWorker, WorkerHandle

logger = logging.getLogger(__name__)

RENDER_INTERVAL_MS = 100  # live story re-render: at most ~10 times a second


class GenerationController(QObject):
    """Starts and stops the story of the open album; owns the run being written."""

    # Generate found photos of the album missing: album id, those photos, what to tell the user.
    photos_missing = Signal(int, list, str)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._session = session
        self._generation: WorkerHandle | None = None
        self._next_cached = NOTHING_CACHED  # what the run being started will find cached
        self._discarded: RunDiscarded | None = None  # the run ended before its first token
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self.render_live)

    # ---------------------------------------------------------------- state

    @property
    def live(self) -> LiveRun | None:
        """The run being written (also ``session.live``)."""
        return self._session.live

    def is_generating(self) -> bool:
        """True while a story is being written."""
        return self._generation is not None

    def is_stopping(self) -> bool:
        """True once Stop was asked for and the run has not ended yet."""
        return self._session.stopping

    # ---------------------------------------------------------------- a run

    def generate(self) -> None:
        """Start telling the story of the open album's photos (all of them: an album with a
        missing photo is refused with a message saying which and what to do)."""
        session = self._session
        album_id = session.album_id
        if self.is_generating() or album_id is None:
            return
        if not session.photo_model.photos():
            session.show_status("Add photos to the album first.")
            return
        try:
            photos = photos_to_tell(session.library, album_id)
        except PhotoMissingError as err:  # the user can fix it from here: find or remove them
            missing = [photo for photo in session.photo_model.photos() if photo.missing]
            self.photos_missing.emit(album_id, missing, str(err))
            return
        except StorytellerError as err:
            session.report_error(err, action="Starting the story")
            return
        self._next_cached = session.cached(photos)  # asked now: the worker owns the backend soon
        options = session.tell_options()
        warning = low_space_before_run(session.library.root, options)
        if warning:  # it may still fit: said, never refused
            session.show_status(f"Warning: {warning[0].upper()}{warning[1:]}.")
        session.remember_choices()
        # The worker builds the backend (if none yet) from the settings of this moment, in its
        # own thread: loading a model can take a while.
        library, engine, settings = session.library, session.engine, session.settings

        def events(should_stop: ShouldStop) -> Iterator[TellEvent]:
            # After a background preparation, which run_requested cancels: it ends within one
            # llama.cpp batch, so this wait is short and not itself stoppable.
            with engine.using(settings, lambda: False) as backend:
                assert backend is not None
                yield from tell(library, album_id, backend, options, should_stop=should_stop)

        handle = session.workers.start(TellWorker(events))
        handle.item.connect(self._on_started)
        handle.phase.connect(self._on_phase)
        handle.token.connect(self._on_token)
        handle.finished.connect(self._on_finished)
        handle.failed.connect(self._on_failed)
        self._generation = handle
        self._render_timer.start()
        session.run_requested.emit()
        session.state_changed.emit()

    def _on_started(self, event: RunStarted | RunDiscarded) -> None:
        """The run is in the library: show it being written."""
        if isinstance(event, RunDiscarded):
            self._discarded = event  # the run's end follows (its error, if it failed)
            return
        session = self._session
        budget = event.request.detail.token_budget
        frames = {
            index: FrameGeometry(
                index, p.path, (p.width, p.height), prepared_size_for((p.width, p.height), budget)
            )
            for index, p in enumerate(event.photos, start=1)
        }
        plan = plan_run(
            [(p.width, p.height) if p.width and p.height else None for p in event.photos],
            event.request.detail,
            event.request.sampling.max_tokens,
            session.settings,
            self._next_cached,
        )
        live = LiveRun(event.album.id, event.run_id, frames, plan.clock)
        session.live = live
        session.run_started.emit(live)
        if event.album.id == session.album_id:
            session.show(live)

    def stop(self) -> None:
        """Stop writing at the next token; the story so far becomes a stopped version."""
        if self._generation is None:
            return
        self._generation.cancel()
        session = self._session
        session.stopping = True
        if session.live is not None:
            session.live.phase_text = "Stopping…"
            session.run_progressed.emit(session.live)
        session.state_changed.emit()

    def _on_phase(self, event: PhaseEvent) -> None:
        live = self._session.live
        if live is None:
            return
        live.on_event(event)
        if not self._session.stopping:
            live.phase_text = event.describe().capitalize() + "…" + live.remaining()
        live.bar = (event.index, event.total or 0)
        self._session.run_progressed.emit(live)

    def _on_token(self, event: TokenEvent) -> None:
        live = self._session.live
        if live is not None:
            live.on_event(event)  # the worker has stored its text already

    # ---------------------------------------------------------------- the live view

    def render_live(self) -> None:
        """Parse what came since the last time and tell the session (~10 times a second)."""
        live = self._session.live
        if live is None or not live.dirty:
            return
        live.dirty = False
        live.story = live.parser.snapshot()
        if not self._session.stopping:
            live.phase_text = live_phase(live.story, live)
        live.bar = (live_progress(live.story, live), live.frame_count * 2)
        self._session.live_story_changed.emit(live)
        self._session.run_progressed.emit(live)

    # ---------------------------------------------------------------- the end of a run

    def _end(self) -> LiveRun | None:
        session = self._session
        live = session.live
        if live is not None and live.dirty:
            self.render_live()  # the last tokens
        session.live = None
        session.stopping = False
        self._generation = None
        self._discarded = None
        self._render_timer.stop()
        return live

    def _on_finished(self, ended: RunEnded | RunDiscarded) -> None:
        live = self._end()
        session = self._session
        if isinstance(ended, RunDiscarded):  # stopped before the first token: no version
            session.show_status(ended.reason)
            session.run_ended.emit(EndedRun(live, None, None, False, "Stopped: nothing written"))
            session.state_changed.emit()
            return
        result = ended.result
        tokens_per_s = live.tokens_per_s() if live is not None else 0.0
        speed = result.timings.tokens_per_s or tokens_per_s
        verb = "Stopped" if result.cancelled else "Finished"
        tokens = result.timings.generated_tokens or (live.tokens if live is not None else 0)
        phase = f"{verb}: {tokens} tokens, {speed:.1f} tokens/s"
        session.run_ended.emit(
            EndedRun(
                live, ended.run, ended.story, False, phase, speed, result.backend, result.model
            )
        )
        session.state_changed.emit()

    def _on_failed(self, err: BaseException, details: str) -> None:
        discarded = self._discarded
        live = self._end()
        session = self._session
        run = None
        if live is not None and discarded is None:  # kept as a failed version with its text
            try:
                run = session.library.run(live.run_id)
            except StorytellerError:
                logger.warning("could not read the failed run %s", live.run_id)
        session.report_error(err, details, action="Writing the story")
        if discarded is not None:
            session.show_status(discarded.reason)
        session.run_ended.emit(EndedRun(live, run, None, True, "Failed"))
        session.state_changed.emit()


def live_phase(story: Story, live: LiveRun) -> str:
    """The phase line while writing: where the model is, its speed and the tokens so far."""
    speed = live.tokens_per_s()
    rate = f" · {speed:.1f} tokens/s" if speed else ""
    frames_written = [segment.image for segment in story.segments if segment.image is not None]
    if frames_written:
        where = f"Writing frame {frames_written[-1]}/{live.frame_count}"
    elif story.segments:  # text, but in no frame's block (yet): no frame number to claim
        where = "Writing the story"
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
