"""Photos prepared in the background while an album is open, so that Generate starts at once.

``PreparationController`` is built with the session. When the open album's photos, the detail or the
instruction change (and a moment later, so that a burst of changes starts one job), it runs the
backend's ``prepare`` (``app.preparation``: when, and when not) in a worker: the photos are encoded
and the whole prompt read, on one llama.cpp thread, the status bar saying "Preparing photo 3 of 6".
Generate cancels it: it stops within one llama.cpp batch (a photo in the vision encoder finishes on
its own thread; the run waits for it only where it uses the projector, its phase saying which photo
and for at most how long: ``photo_encoder``), and the run then reads only what is not prepared (all
prepared: the prompt's last token again). Stop, close and another album never wait for it. The
backend is used by one job at a time (``EngineSlot.using``). A model left idle for
``IDLE_RELEASE_MINUTES`` is released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QTimer

from desktop_app.app import preparation
from desktop_app.app.estimates import plan_run
from desktop_app.app.telling import known_photo
from desktop_app.engine.api import Phase, PhaseEvent, ShouldStop
from desktop_app.ui.session import Session
from desktop_app.ui.workers import Worker, WorkerHandle

logger = logging.getLogger(__name__)

SETTLE_MS = 1500  # after the last change before preparing starts


class PrepareWorker(Worker):
    """Relays a preparation's phase events; its result is None."""

    def __init__(self, events: Callable[[ShouldStop], Iterator[PhaseEvent]]) -> None:
        super().__init__()
        self._events = events

    def execute(self) -> None:
        for event in self._events(self.is_cancelled):
            if isinstance(event, PhaseEvent):
                self.phase.emit(event)


class PreparationController(QObject):
    """Prepares the open album's photos in the background (see the module docstring)."""

    def __init__(self, session: Session, *, settle_ms: int = SETTLE_MS) -> None:
        super().__init__(session)
        self._session = session
        self._handle: WorkerHandle | None = None
        self._running = False  # a story is being written: nothing is prepared meanwhile
        self.status = ""  # what it does now, as the status bar says it
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(settle_ms)
        self._settle.timeout.connect(self.start)
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(preparation.IDLE_RELEASE_MINUTES * 60_000)
        self._idle.timeout.connect(self._release_idle)
        session.album_opened.connect(self._album_opened)
        session.photos_changed.connect(lambda album_id: self.schedule())
        session.choices_changed.connect(self.schedule)
        session.settings_changed.connect(lambda _settings: self.schedule())
        session.run_requested.connect(self._run_requested)
        session.run_ended.connect(self._run_ended)

    def is_preparing(self) -> bool:
        return self._handle is not None

    def schedule(self) -> None:
        """Prepare the open album a moment from now (a change came)."""
        self.cancel()
        if not self._running:
            self._settle.start()

    def cancel(self) -> None:
        """Stop preparing at the next llama.cpp batch; never waits."""
        self._settle.stop()
        if self._handle is not None:
            self._handle.cancel()

    def _album_opened(self, _album: object) -> None:
        self.schedule()

    def _run_requested(self) -> None:
        self._running = True
        self._idle.stop()
        self.cancel()

    def _run_ended(self, _ended: object) -> None:
        self._running = False
        self._idle.start()

    def start(self) -> None:
        """Prepare the open album now, if the policy allows (``app.preparation.why_not``)."""
        session = self._session
        photos = session.photo_model.photos()
        if self._running or self._handle is not None or session.album_id is None or not photos:
            return
        if any(photo.missing for photo in photos):
            return  # Generate will say which and what to do
        settings = session.settings
        options = session.tell_options()
        request = options.request([p.path for p in photos], [known_photo(p) for p in photos])
        backend = session.engine.existing()
        plan = plan_run(
            [(p.width, p.height) if p.width and p.height else None for p in photos],
            request.detail,
            request.sampling.max_tokens,
            settings,
        )
        reason = preparation.why_not(
            enabled=settings.prepare_in_background,
            backend_can=not settings.server_url,
            loaded=bool(getattr(backend, "is_loaded", False)),
            memory_bytes=plan.cost.memory_bytes,
        )
        if reason:
            logger.info("photos are not prepared in the background: %s", reason)
            return
        engine = session.engine

        def events(should_stop: ShouldStop) -> Iterator[PhaseEvent]:
            with engine.using(settings, should_stop) as used:
                if used is not None:
                    yield from preparation.prepare(used, request, should_stop)

        handle = session.workers.start(PrepareWorker(events))
        handle.phase.connect(self._on_phase)
        handle.finished.connect(lambda _result: self._ended())
        handle.failed.connect(self._failed)
        self._handle = handle
        self._idle.stop()

    def _on_phase(self, event: PhaseEvent) -> None:
        if event.phase is Phase.ENCODING_PHOTO and event.total:
            self.status = f"Preparing photo {event.index} of {event.total}"
        elif event.phase is Phase.READING_PROMPT:
            self.status = "Preparing the story's start"
        else:
            return
        if not self._running:
            self._session.show_status(self.status + "…")

    def _ended(self) -> None:
        handle, self._handle = self._handle, None
        cancelled = handle is not None and handle.worker.is_cancelled()
        if self.status and not cancelled and not self._running:
            self._session.show_status("Photos prepared: Generate starts at once")
        self.status = ""
        if not self._running:
            self._idle.start()

    def _failed(self, err: BaseException, _details: str) -> None:
        # Only a head start was lost: the run meets the same problem and says it in full.
        logger.info("preparing the photos failed: %s", err)
        self._ended()

    def _release_idle(self) -> None:
        """Give an idle model's memory back (the caches stay)."""
        if self._running or self._handle is not None:
            return
        engine = self._session.engine
        with engine.using_now() as backend:
            if backend is not None:
                preparation.release(backend)
