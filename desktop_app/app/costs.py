"""What a story of some photos will cost (tokens, context, memory, time) and whether it fits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from desktop_app.engine import costs, speeds
from desktop_app.engine.events import NOTHING_CACHED, CachedParts, Detail, StoryRequest
from desktop_app.engine.images import estimate_tokens
from desktop_app.errors import StorytellerError

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
    """This machine's rates for the configured model; None when a server runs the model or no
    model is found."""
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
) -> CostEstimate:
    """Estimated tokens, context, memory and (given this machine's ``rates``) time of a story
    over photos of ``sizes`` (7B model) that will find ``cached`` (aligned with ``sizes``)."""
    estimate = costs.estimate_run(list(sizes), detail, max_tokens)
    problem = ""
    try:
        costs.check_fits(
            estimate.tokens,
            n_ctx=estimate.n_ctx,
            context_length=costs.QWEN25VL_7B.context_length,
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
