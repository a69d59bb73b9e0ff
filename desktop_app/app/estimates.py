"""What a story of some photos will cost (tokens, context, memory, time) and whether it fits.

``plan_run`` is the one estimate: the filmstrip's cost label, the GUI's live clock and the CLI's
time line and progress bars all start from its ``RunPlan``; ``RunProgress`` follows a run's
events (real token counts) to give its speed and the time left, for the GUI and the CLI alike.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.engine import costs, speeds
from desktop_app.engine.api import (
    NOTHING_CACHED,
    CachedParts,
    Detail,
    KnownPhoto,
    PhaseEvent,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.gguf_info import read_projector_info, read_text_model_info
from desktop_app.engine.images import estimate_tokens
from desktop_app.errors import StorytellerError
from desktop_app.imaging import PhotoUnreadableError, photo_size

if TYPE_CHECKING:
    from desktop_app.app.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CostEstimate:
    """What a story of the current photos will cost, and why it may not fit ("" if it fits)."""

    image_tokens: int
    n_ctx: int
    memory_bytes: int
    problem: str = ""
    duration: str = ""  # "about 6 min" on this machine ("" when unknown: a server)

    def describe(self) -> str:
        gib = self.memory_bytes / 2**30
        text = f"≈ {self.image_tokens:,} image tokens · context {self.n_ctx:,} · ≈ {gib:.1f} GiB"
        return f"{text} · {self.duration}" if self.duration else text


def run_speeds(settings: Settings | None) -> speeds.Speeds | None:
    """This machine's rates for the model ``settings`` configure; None when a server runs the
    model or no model is found.

    The one source of rates for every estimate (``plan_run``). Not ``LlamaCppBackend.speeds()``:
    the settings are known before any backend exists (the GUI creates its backend on the first
    run, in the worker thread), so the filmstrip's label, the GUI's live clock and the CLI
    (whose options become settings, ``cli.options.settings_from_args``) read the same entry of
    the same speed book, under the key the backend records its runs by (``speeds.model_key``).
    """
    from desktop_app import paths
    from desktop_app.app.backends import resolve_model
    from desktop_app.engine import device

    if settings is None or settings.server_url:
        return None
    try:
        model = resolve_model(settings.model_path, settings.mmproj_path)
    except (StorytellerError, OSError):
        return None
    if model.mmproj_path is None:
        return None
    return speeds.for_model(
        speeds.SpeedBook(paths.speeds_file()),
        model.text_path,
        model.mmproj_path,
        device.accelerator(settings.n_gpu_layers),
        settings.n_threads or device.physical_cores(),
    )


def run_shape(settings: Settings | None) -> costs.ModelShape:
    """The shape of the model ``settings`` configure, read from its GGUF headers before it is
    loaded (its context length, layers and real file sizes); the default 7B's when a server
    runs the model or no model is found (the run itself then says what is wrong)."""
    from desktop_app.app.backends import resolve_model

    if settings is None or settings.server_url:
        return costs.QWEN25VL_7B
    try:
        model = resolve_model(settings.model_path, settings.mmproj_path)
    except (StorytellerError, OSError):
        return costs.QWEN25VL_7B
    if model.mmproj_path is None:
        return costs.QWEN25VL_7B
    try:
        return _shape_of_files(model.text_path, model.mmproj_path, *_stamp(model.text_path))
    except (StorytellerError, OSError):
        return costs.QWEN25VL_7B


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _shape_of_files(
    text_path: Path, mmproj_path: Path, _size: int, _mtime_ns: int
) -> costs.ModelShape:
    # The filmstrip plans on every change of the album: read each model's headers once (the
    # text file's size and time in the key: a file converted again is read again).
    return costs.shape_of(read_text_model_info(text_path), read_projector_info(mmproj_path))


def cached_parts(backend: object, request: StoryRequest) -> CachedParts:
    """What ``backend`` says a run of ``request`` would find cached (nothing when it cannot
    say). Never while that backend runs a story: its caches are not thread-safe."""
    query = getattr(backend, "cached", None)
    if query is None:
        return NOTHING_CACHED
    try:
        return query(request)
    except Exception:  # the estimate must never cost the run
        logger.warning("could not ask the backend what is cached", exc_info=True)
        return NOTHING_CACHED


def run_clock(
    rates: speeds.Speeds | None,
    sizes: Sequence[tuple[int, int]],
    detail: Detail,
    max_tokens: int,
    cached: CachedParts = NOTHING_CACHED,
) -> speeds.RunClock | None:
    """The live remaining-time clock of a run over photos of ``sizes`` that will find
    ``cached`` (aligned with ``sizes``), or None (unknown)."""
    if rates is None:
        return None
    tokens = [estimate_tokens(size, detail.token_budget) for size in sizes]
    return speeds.RunClock(rates, tokens, costs.PROMPT_TEXT_TOKENS, max_tokens, cached=cached)


def estimate_cost(
    sizes: Sequence[tuple[int, int]],
    detail: Detail,
    max_tokens: int,
    rates: speeds.Speeds | None = None,
    cached: CachedParts = NOTHING_CACHED,
    shape: costs.ModelShape = costs.QWEN25VL_7B,
) -> CostEstimate:
    """Estimated tokens, context, memory and (given this machine's ``rates``) time of a story
    over photos of ``sizes`` on a model of ``shape`` (``run_shape``: the configured model's)
    that will find ``cached`` (aligned with ``sizes``); ``problem`` when the model's context or
    this machine's memory cannot hold it."""
    estimate = costs.estimate_run(list(sizes), detail, max_tokens, shape=shape)
    problem = ""
    try:
        costs.check_fits(
            estimate.tokens,
            n_ctx=estimate.n_ctx,
            context_length=shape.context_length,
            memory_bytes=estimate.memory_bytes,
            physical_bytes=costs.physical_memory_bytes(),
        )
    except StorytellerError as err:
        problem = str(err)
    duration = ""
    if rates is not None:
        run = speeds.estimate(
            rates, estimate.image_tokens, costs.PROMPT_TEXT_TOKENS, max_tokens, cached
        )
        duration = speeds.describe(run.total_s, measured=rates.measured)
        note = cached.describe(len(sizes))
        duration = f"{duration} · {note}" if note else duration
    return CostEstimate(
        sum(estimate.image_tokens), estimate.n_ctx, estimate.memory_bytes, problem, duration
    )


@dataclass(frozen=True)
class RunPlan:
    """What a run of some photos will cost and take, planned once before it starts.

    ``cost`` is what the run needs (tokens, context, memory; ``problem`` when it will not fit)
    and the time it should take on this machine; ``clock`` follows the run live (None when the
    speed is unknown: a server, or no model found); ``cached`` is what the run will find cached,
    for the ``photos`` whose size is known, in album order.
    """

    cost: CostEstimate
    clock: speeds.RunClock | None
    cached: CachedParts
    photos: int
    detail: Detail

    def describe(self) -> str:
        """The cost label: ``≈ 1,330 image tokens · context 8,192 · ≈ 6.1 GiB · about 6 min``."""
        return self.cost.describe()

    def time_line(self) -> str:
        """``about 6 min for 5 photos at As trained (estimate; 2 of 5 photos cached)``; "" when
        the time is unknown."""
        if self.clock is None:
            return ""
        measured = self.clock.speeds.measured
        text = speeds.describe(self.clock.plan.total_s, measured=measured).replace(
            " (estimate)", ""
        )
        notes = [
            "estimate" if measured else "estimate from the model's size, until it has run here"
        ]
        cached = self.cached.describe(self.photos)
        if cached:
            notes.append(cached)
        counted = f"{self.photos} photo" if self.photos == 1 else f"{self.photos} photos"
        return f"{text} for {counted} at {self.detail.label} ({'; '.join(notes)})"


def plan_run(
    sizes: Sequence[tuple[int, int] | None],
    detail: Detail,
    max_tokens: int,
    settings: Settings | None,
    cached: CachedParts = NOTHING_CACHED,
) -> RunPlan:
    """The plan of a story over photos of upright ``sizes`` (album order; None: a size not known,
    that photo is left out) at ``detail`` writing up to ``max_tokens``, on the model ``settings``
    configure (its rates: ``run_speeds``; its context length and memory: ``run_shape``), that will find ``cached`` (aligned with ``sizes``).

    The filmstrip calls it with the open album's photos (their sizes as the library recorded
    them) and ``GenerationController.cached``; a run calls it before it starts and follows
    ``plan.clock`` (with ``RunProgress``); ``storyteller tell`` gets sizes from ``photo_sizes``.
    """
    known = [index for index, size in enumerate(sizes) if size is not None]
    planned = [size for size in sizes if size is not None]
    chosen = cached.select(known)
    rates = run_speeds(settings)
    clock = run_clock(rates, planned, detail, max_tokens, chosen)
    cost = estimate_cost(planned, detail, max_tokens, rates, chosen, run_shape(settings))
    return RunPlan(cost, clock, chosen, len(planned), detail)


def photo_sizes(
    photos: Sequence[Path], known: Sequence[KnownPhoto | None] = ()
) -> list[tuple[int, int] | None]:
    """Each photo's upright size for ``plan_run``: the library's when it knows the unchanged file,
    else read from the file's header through ``imaging.photo_size`` (None when it cannot be read
    or is too large to open: the run itself then refuses that photo, saying why)."""
    sizes: list[tuple[int, int] | None] = []
    for index, photo in enumerate(photos):
        fact = known[index] if index < len(known) else None
        if fact is not None:
            sizes.append(fact.upright_size)
            continue
        try:
            sizes.append(photo_size(Path(photo)))
        except PhotoUnreadableError:
            sizes.append(None)
    return sizes


def plan_request(
    request: StoryRequest, settings: Settings | None, backend: object | None = None
) -> RunPlan:
    """``plan_run`` for a run of ``request`` (its photos' sizes from ``photo_sizes``), with what
    ``backend`` says it will find cached. Before the backend runs: its caches are not
    thread-safe."""
    cached = NOTHING_CACHED if backend is None else cached_parts(backend, request)
    return plan_run(
        photo_sizes(request.photos, request.known),
        request.detail,
        request.sampling.max_tokens,
        settings,
        cached,
    )


class RunProgress:
    """A run followed from its events: the tokens written (the real count, ``TokenEvent.tokens``,
    not one per text piece), the writing speed and, with a ``clock``, the time left.

    The GUI's live run and the CLI's progress bars both feed it every event, so they show the
    same speed and time left for the same run, whatever the text's characters.
    """

    def __init__(
        self,
        clock: speeds.RunClock | None = None,
        *,
        now: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.clock = clock
        self.tokens = 0
        self.first_token_at: float | None = None
        self._now = now

    def on_event(self, event: object) -> None:
        """Take one event of the run (others than phases and tokens are ignored)."""
        if isinstance(event, TokenEvent):
            if self.first_token_at is None:
                self.first_token_at = self._now()
            self.tokens += event.tokens
            if self.clock is not None:
                self.clock.on_tokens(event.tokens)
        elif isinstance(event, PhaseEvent) and self.clock is not None:
            self.clock.on_phase(event.phase, event.index)

    def tokens_per_s(self) -> float:
        """Writing speed since the first token (0 until two tokens are in)."""
        if self.first_token_at is None or self.tokens < 2:
            return 0.0
        elapsed = self._now() - self.first_token_at
        # The first token's time belongs to reading the prompt: count the ones after it.
        return (self.tokens - 1) / elapsed if elapsed > 0 else 0.0

    def remaining_s(self) -> float | None:
        """Seconds the run should still take; None when unknown (no clock)."""
        return None if self.clock is None else self.clock.remaining_s()

    def remaining(self) -> str:
        """``about 4 min left`` (``(estimate)`` before this machine has measured the model), or
        "" when unknown."""
        seconds = self.remaining_s()
        if seconds is None or self.clock is None:
            return ""
        return speeds.describe(seconds, measured=self.clock.speeds.measured, left=True)
