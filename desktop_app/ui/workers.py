"""Background work: a ``QObject`` worker moved to its own ``QThread``.

A worker runs a Qt-free job (a generator of engine events, or a plain callable) and reports
through signals only; it never touches widgets. ``cancel()`` sets a ``threading.Event`` the job
checks between steps. Every exception is caught at the thread boundary and sent as ``failed``.
Threads are stopped by cancelling and waiting, never by ``terminate()``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.app.telling import RunDiscarded, RunEnded, RunStarted, TellEvent
from desktop_app.engine.api import (
    PhaseEvent,
    ShouldStop,
    TokenEvent,
)
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)


class JobContext:
    """What a background job may do: check for cancellation, report progress, send items."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def should_stop(self) -> bool:
        """True once the job was asked to stop."""
        return self._worker.is_cancelled()

    def report(self, percent: int, message: str) -> None:
        """Progress in percent (-1 when unknown) with a line for the status bar."""
        self._worker.progress.emit(percent, message)

    def emit(self, item: object) -> None:
        """A partial result (a thumbnail, an imported photo) delivered to the GUI thread."""
        self._worker.item.emit(item)


Job = Callable[[JobContext], Any]


class Worker(QObject):
    """Base of all workers: the signals the GUI listens to and a cancel flag."""

    progress = Signal(int, str)  # percent (-1: unknown), message
    token = Signal(object)  # TokenEvent: its text and the real number of tokens it took
    item = Signal(object)  # a partial result (JobContext.emit)
    phase = Signal(object)  # PhaseEvent
    finished = Signal(object)  # the job's result
    failed = Signal(object, str)  # the exception, its traceback as text
    done = Signal()  # after finished or failed: the thread may quit

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check; safe from any thread."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._cancel.is_set()

    def execute(self) -> Any:
        """Do the work in the worker thread and return its result."""
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        try:
            result = self.execute()
        except BaseException as err:  # the thread boundary: nothing may escape
            logger.debug("worker %s failed", type(self).__name__, exc_info=True)
            self.failed.emit(err, "".join(traceback.format_exception(err)))
        else:
            self.finished.emit(result)
        finally:
            self.done.emit()


class CallableWorker(Worker):
    """Runs ``job(context)`` in the background; its return value is the result."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    def execute(self) -> Any:
        return self._job(JobContext(self))


class TellWorker(Worker):
    """Relays a story being told (``app.telling.tell``): ``RunStarted`` and ``RunDiscarded`` as
    ``item``, phases and whole token events (their real token counts) as their signals, and the
    ``RunEnded`` (or, for a run stopped before its first token, the ``RunDiscarded``) as the
    result."""

    def __init__(self, events: Callable[[ShouldStop], Iterator[TellEvent]]) -> None:
        super().__init__()
        self._events = events

    def execute(self) -> RunEnded | RunDiscarded:
        discarded: RunDiscarded | None = None
        for event in self._events(self.is_cancelled):
            if isinstance(event, TokenEvent):
                self.token.emit(event)
            elif isinstance(event, PhaseEvent):
                self.phase.emit(event)
            elif isinstance(event, (RunStarted, RunDiscarded)):
                self.item.emit(event)
                discarded = event if isinstance(event, RunDiscarded) else None
            elif isinstance(event, RunEnded):
                return event
        if discarded is not None:  # stopped before the first token: nothing was kept
            return discarded
        raise StorytellerError("the story ended without being stored: try again")


class WorkerHandle(QObject):
    """A started worker with its thread, living in the GUI thread.

    It re-emits the worker's signals from the GUI thread, so anything may be connected to
    them, lambdas included (a lambda connected to the worker itself would run in the worker
    thread). ``stop()`` cancels the job and joins the thread.
    """

    progress = Signal(int, str)
    token = Signal(object)
    item = Signal(object)
    phase = Signal(object)
    finished = Signal(object)
    failed = Signal(object, str)
    ended = Signal()  # the thread has finished (after finished/failed)

    def __init__(self, worker: Worker, thread: QThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.thread = thread
        # Bound methods of this GUI-thread object: queued connections across threads.
        worker.progress.connect(self._relay_progress)
        worker.token.connect(self._relay_token)
        worker.item.connect(self._relay_item)
        worker.phase.connect(self._relay_phase)
        worker.finished.connect(self._relay_finished)
        worker.failed.connect(self._relay_failed)
        thread.finished.connect(self._relay_ended)

    def _relay_progress(self, percent: int, message: str) -> None:
        self.progress.emit(percent, message)

    def _relay_token(self, event: object) -> None:
        self.token.emit(event)

    def _relay_item(self, item: object) -> None:
        self.item.emit(item)

    def _relay_phase(self, event: object) -> None:
        self.phase.emit(event)

    def _relay_finished(self, result: object) -> None:
        self.finished.emit(result)

    def _relay_failed(self, err: object, details: str) -> None:
        self.failed.emit(err, details)

    def _relay_ended(self) -> None:
        self.thread.wait()  # finished() is emitted just before the thread really ends
        self.ended.emit()

    def is_running(self) -> bool:
        """True while the worker's thread runs."""
        return shiboken6.isValid(self.thread) and self.thread.isRunning()

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self.worker.cancel()

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Cancel the job and wait for its thread to end; False if it did not end in time."""
        self.worker.cancel()
        if not shiboken6.isValid(self.thread):
            return True  # already finished and deleted
        self.thread.quit()
        return self.thread.wait(timeout_ms)


_live_threads: list[QThread] = []


def live_threads() -> list[QThread]:
    """Worker threads that are still running (tests fail when one outlives its test)."""
    _live_threads[:] = [t for t in _live_threads if shiboken6.isValid(t) and t.isRunning()]
    return list(_live_threads)


def start_worker(worker: Worker, parent: QObject | None = None) -> WorkerHandle:
    """Move ``worker`` to a new thread and start it; the thread quits when the job is done.

    Call it from the GUI thread and connect to the returned handle's signals (not the
    worker's): they are delivered in the GUI thread once control returns to the event loop.
    """
    thread = QThread()
    _live_threads.append(thread)
    thread.setObjectName(f"storyteller-{type(worker).__name__}")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    handle = WorkerHandle(worker, thread, parent)
    thread.start()
    return handle


class WorkerPool(QObject):
    """The workers one window started: each is forgotten (and deleted) when its thread ends,
    and ``stop_all()`` cancels and joins the rest (on close)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handles: list[WorkerHandle] = []

    def start(self, worker: Worker) -> WorkerHandle:
        """Start ``worker`` in its own thread and keep its handle until the thread ends."""
        handle = start_worker(worker, self)
        self._handles.append(handle)
        handle.ended.connect(lambda h=handle: self._forget(h))
        return handle

    def _forget(self, handle: WorkerHandle) -> None:
        if handle in self._handles:
            self._handles.remove(handle)
        handle.worker.deleteLater()
        handle.thread.deleteLater()

    def handles(self) -> list[WorkerHandle]:
        """The workers started and not yet ended."""
        return list(self._handles)

    def running(self) -> list[WorkerHandle]:
        """Workers whose thread is still running."""
        return [h for h in self._handles if h.is_running()]

    def stop_all(self) -> None:
        """Cancel every worker and wait for its thread; each job stops at its next check."""
        for handle in list(self._handles):
            handle.stop()
