"""What a story of some photos will cost (tokens, context, memory) and whether it fits here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app.engine import costs
from desktop_app.engine.events import Detail
from desktop_app.errors import StorytellerError


@dataclass(frozen=True)
class CostEstimate:
    """What a story of the current photos will cost, and why it may not fit ("" if it fits)."""

    image_tokens: int
    n_ctx: int
    memory_bytes: int
    problem: str = ""

    def describe(self) -> str:
        gib = self.memory_bytes / 2**30
        return f"≈ {self.image_tokens:,} image tokens · context {self.n_ctx:,} · ≈ {gib:.1f} GiB"


def estimate_cost(
    sizes: Sequence[tuple[int, int]], detail: Detail, max_tokens: int
) -> CostEstimate:
    """Estimated tokens, context and memory of a story over photos of ``sizes`` (7B model)."""
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
    return CostEstimate(sum(estimate.image_tokens), estimate.n_ctx, estimate.memory_bytes, problem)
