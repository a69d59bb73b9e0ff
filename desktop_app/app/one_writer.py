"""One writer to the library while several stories are told at once.

The library is one SQLite connection whose methods run their own transactions; two threads
interleaving them would mix one run's BEGIN with another's COMMIT. ``OneWriter`` stands in for
the library on the worker threads: every method call is queued to the thread that owns the
library (the one calling ``serve``), run there one at a time in arrival order, and its result
(or error) handed back. Only data goes between the threads, never the connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import Any

from desktop_app.library.store import Library

# How often ``serve`` checks whether every task ended (and Ctrl-C's handler gets to run).
SERVE_POLL_S = 0.1


class OneWriter:
    """A stand-in for ``library`` whose calls from any thread run on the serving thread."""

    def __init__(self, library: Library) -> None:
        self._library = library
        self._owner = threading.current_thread()
        self._calls: queue.Queue[tuple[Callable[..., Any], tuple, dict, Future[Any]]] = (
            queue.Queue()
        )

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._library, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is self._owner:
                return attribute(*args, **kwargs)
            done: Future[Any] = Future()
            self._calls.put((attribute, args, kwargs, done))
            return done.result()

        return call

    def serve(self, tasks: Collection[Future[Any]], on_idle: Callable[[], None] = bool) -> None:
        """Run the queued calls until every one of ``tasks`` has ended; ``on_idle`` between."""
        while True:
            try:
                method, args, kwargs, done = self._calls.get(timeout=SERVE_POLL_S)
            except queue.Empty:
                if all(task.done() for task in tasks):
                    return
                on_idle()
                continue
            try:
                done.set_result(method(*args, **kwargs))
            except BaseException as err:  # the caller's thread raises it
                done.set_exception(err)
                if not isinstance(err, Exception):  # a second Ctrl-C aborts here too
                    raise
