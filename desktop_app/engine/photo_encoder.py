"""The vision encoder, run beside the generating thread so that Stop does not wait for it.

llama.cpp's vision encoder (``mtmd_encode_chunk``) has no abort callback, and one photo takes
from seconds to minutes on a CPU (7B shape, 2 cores: 36 s as trained, 154 s at "most detail";
bench/real_scale.py). A Stop pressed meanwhile used to wait for it. Here the encode runs on its
own thread while the run waits for it, asking ``should_stop``; a stopped run returns at once and
the encode goes on. Its work is kept: the next run calls ``settle``, which lets it finish and
files its embedding (that photo is then cached). mtmd is not thread-safe, so one encode at a
time, and nothing else uses the projector while one runs. Freeing the projector must not wait
either (the GUI closes a backend on its own thread): ``release`` hands the free to the encode's
thread, which runs it when the photo is done.

The thread is a daemon: a second Ctrl-C on the command line must end the process at once, not
when the photo is done. A process must not shut down normally while one runs (llama.cpp's
libraries are torn down under it: a segmentation fault); see ``still_encoding``.

A run that finds a photo still in the encoder (left by a background preparation, or a stopped
run) waits for it only when it uses the projector: a run whose whole prompt is restored never
does; one that tokenizes, encodes or loads a larger context does (mtmd is not thread-safe, and a
second projector beside the busy one would hold memory no estimate counted). Abandoning that
encode by reloading the projector would cost a projector load and the photo's work, and save
no more than the wait it replaces: it is not done. ``finishing`` says the wait beforehand,
bounded by this machine's estimate of the photo's encode, and whether the run uses the photo.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as StillRunning
from dataclasses import dataclass

import numpy as np

from desktop_app.engine import llama_prompt
from desktop_app.engine.api import Phase, PhaseEvent, ShouldStop
from desktop_app.engine.images import PreparedImage

logger = logging.getLogger(__name__)

# How often a waiting run asks should_stop: well under the 0.25 s a Stop feels instant within.
POLL_S = 0.05
THREAD_NAME = "storyteller-vision"


def _never() -> bool:
    return False


def still_encoding() -> bool:
    """Whether a photo is still in a vision encoder somewhere in this process."""
    return any(t.name == THREAD_NAME and t.is_alive() for t in threading.enumerate())


@dataclass
class _Encoding:
    key: str
    photo: PreparedImage
    future: Future[np.ndarray]
    started: float
    then: Callable[[], None] | None = None  # what ``release`` left for the encode's thread


class PhotoEncoder:
    """Encodes one photo at a time off the caller's thread; ``on_encoded(key, embedding)`` files
    each embedding, always on the caller's thread; ``estimate(tokens)``: the seconds one photo of
    that many vision tokens should take here."""

    def __init__(
        self,
        on_encoded: Callable[[str, np.ndarray], None],
        estimate: Callable[[int], float] = lambda _tokens: 0.0,
    ) -> None:
        self._on_encoded = on_encoded
        self._estimate = estimate
        self._encoding: _Encoding | None = None
        self._lock = threading.Lock()  # between ``release`` and an encode that is ending

    def encode(
        self,
        mtmd_ctx: int,
        chunk: int,
        n_embd: int,
        photo: PreparedImage,
        key: str,
        should_stop: ShouldStop,
    ) -> np.ndarray | None:
        """The embedding of ``photo``'s image ``chunk``, filed; None if ``should_stop`` turned
        true first (the encode goes on, ``settle`` files it). The photo still in the encoder
        for a run that stopped or a preparation is waited for, not encoded again."""
        from llama_cpp import mtmd_cpp

        if self._encoding is not None and self._encoding.key == key:
            return self._finish(should_stop)
        if not self.settle(should_stop):
            return None
        # The run frees its chunk list when it returns, maybe before this encode is done.
        owned = mtmd_cpp.mtmd_input_chunk_copy(chunk)
        if not owned:
            raise llama_prompt.GenerationError(f"llama.cpp could not copy {photo.path.name}")
        future: Future[np.ndarray] = Future()
        encoding = _Encoding(key, photo, future, time.perf_counter())

        def work() -> None:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(llama_prompt.encode(mtmd_ctx, owned, photo.tokens, n_embd, photo))
            except BaseException as err:  # handed to the waiting thread
                future.set_exception(err)
            finally:
                mtmd_cpp.mtmd_input_chunk_free(owned)
                with self._lock:
                    then = encoding.then
                if then is not None:
                    then()

        self._encoding = encoding
        threading.Thread(target=work, name=THREAD_NAME, daemon=True).start()
        return self._finish(should_stop)

    def finishing(
        self, photos: list[PreparedImage], keys: list[str], first: int = 0
    ) -> PhaseEvent | None:
        """What a run of ``photos`` (their embedding ``keys``; those before index ``first`` are
        read already) waits for before it can use the projector, as its phase: the photo still
        in the encoder, if any, with the seconds its estimate leaves (at least 1)."""
        encoding = self._encoding
        if encoding is None or encoding.future.done():
            return None  # (``settle`` files a finished one at once)
        estimate = self._estimate(encoding.photo.tokens)
        spent = time.perf_counter() - encoding.started
        seconds = float(max(1, math.ceil(estimate - spent))) if estimate > 0 else 0.0
        if encoding.key in keys[first:]:
            index = keys.index(encoding.key, first) + 1
            return PhaseEvent(Phase.FINISHING_PHOTO, index, seconds=seconds)
        same_file = any(p.content_hash == encoding.photo.content_hash for p in photos)
        phase = Phase.FINISHING_OLD_PHOTO if same_file else Phase.FINISHING_OTHER_PHOTO
        return PhaseEvent(phase, seconds=seconds)

    def settle(self, should_stop: ShouldStop = _never) -> bool:
        """Let the encode a stopped run left behind finish, and file its embedding. False if
        ``should_stop`` turned true first (it is still running). A failure is only logged: the
        run that wanted the photo was stopped, and the next one meets the error itself."""
        if self._encoding is None:
            return True
        name = self._encoding.photo.path.name
        try:
            return self._finish(should_stop) is not None
        except Exception as err:
            logger.warning("the vision encoder failed on %s after its run stopped: %s", name, err)
            return True

    def release(self, free: Callable[[], None]) -> None:
        """Run ``free`` (it frees the projector) now, or, while an encode still uses the
        projector, on its thread once it is done; that photo's embedding is then dropped."""
        encoding, self._encoding = self._encoding, None
        if encoding is not None:
            with self._lock:
                if not encoding.future.done():
                    encoding.then = free
                    return
        free()

    def _finish(self, should_stop: ShouldStop) -> np.ndarray | None:
        encoding = self._encoding
        assert encoding is not None
        while True:
            try:
                embedding = encoding.future.result(timeout=POLL_S)
                break
            except StillRunning:
                if should_stop():
                    return None
            except BaseException:
                self._encoding = None
                raise
        self._encoding = None
        self._on_encoded(encoding.key, embedding)
        return embedding
