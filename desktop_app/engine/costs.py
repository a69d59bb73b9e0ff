"""What a run costs before it starts: context tokens, context size and memory.

KV cells, not M-RoPE positions, are what fill a context: an image of ``t`` vision tokens takes
``t + 2`` cells (plus ``<|vision_start|>``/``<|vision_end|>``) although it advances positions by far
less, so llama-cpp-python's own checks under-count. Storyteller sizes the context itself from
``text + Σ(image tokens + 2) + max_tokens`` (DESIGN.md section 3).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app.engine.events import Detail
from desktop_app.engine.images import estimate_tokens
from desktop_app.engine.prompt import TOKENS_AROUND_IMAGE
from desktop_app.errors import StorytellerError

# System prompt + ChatML markup + instruction in Qwen's tokenizer is about 95 tokens; the GUI's
# estimate rounds up. The llama.cpp backend counts the real prompt instead.
PROMPT_TEXT_TOKENS = 128
# Contexts are allocated in steps of this many cells.
CONTEXT_STEP = 256
# Fixed costs beside weights and KV cache: logits and compute buffers, runtime (measured on the
# 7B at n_batch 512: ~0.5 GiB).
RUNTIME_OVERHEAD_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a model that decide its KV-cache and vision-encoder memory."""

    n_layers: int
    n_kv_heads: int
    head_dim: int
    context_length: int
    vision_heads: int = 16
    weights_bytes: int = 0

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of F16 K and V cache per context cell."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * 2


# Qwen2.5-VL-7B (QwenStoryteller): 28 layers, 4 KV heads of 128, 128k positions; Q4_K_M text
# GGUF + F16 mmproj weigh ~4.7 GB + ~1.35 GB.
QWEN25VL_7B = ModelShape(
    n_layers=28,
    n_kv_heads=4,
    head_dim=128,
    context_length=128000,
    vision_heads=16,
    weights_bytes=4_683_074_240 + 1_354_163_200,
)


@dataclass(frozen=True)
class RunEstimate:
    """Context cells a run needs, the context to allocate, and the memory it will take."""

    tokens: int
    n_ctx: int
    memory_bytes: int
    image_tokens: tuple[int, ...] = ()


def context_tokens(text_tokens: int, image_tokens: Sequence[int], max_tokens: int) -> int:
    """KV cells of a run: prompt text + every image with its 2 marker tokens + the output."""
    return text_tokens + sum(t + TOKENS_AROUND_IMAGE for t in image_tokens) + max_tokens


def round_context(tokens: int) -> int:
    """The context size to allocate for ``tokens`` cells (a multiple of ``CONTEXT_STEP``)."""
    return max(CONTEXT_STEP, -(-tokens // CONTEXT_STEP) * CONTEXT_STEP)


def vision_encoder_bytes(image_tokens: int, vision_heads: int) -> int:
    """Peak compute memory of the vision encoder for one image, without flash attention.

    Qwen2.5-VL's encoder sees 4 patches per output token; its dense window mask and each head's
    attention scores are (4t)² floats.
    """
    patches = 4 * image_tokens
    return (1 + vision_heads) * patches * patches * 4


def estimate_run(
    photo_sizes: Sequence[tuple[int, int]],
    detail: Detail,
    max_tokens: int,
    *,
    text_tokens: int = PROMPT_TEXT_TOKENS,
    shape: ModelShape = QWEN25VL_7B,
) -> RunEstimate:
    """Estimate a run on photos of upright ``photo_sizes`` at ``detail`` (for the cost display)."""
    image_tokens = tuple(estimate_tokens(size, detail.token_budget) for size in photo_sizes)
    tokens = context_tokens(text_tokens, image_tokens, max_tokens)
    n_ctx = round_context(tokens)
    memory = run_memory_bytes(shape, n_ctx, max(image_tokens, default=0))
    return RunEstimate(tokens=tokens, n_ctx=n_ctx, memory_bytes=memory, image_tokens=image_tokens)


def run_memory_bytes(shape: ModelShape, n_ctx: int, largest_image_tokens: int) -> int:
    """Memory a run takes: weights, a KV cache of ``n_ctx`` cells, the vision encoder's peak on
    the largest photo, and the runtime's fixed buffers."""
    return (
        shape.weights_bytes
        + n_ctx * shape.kv_bytes_per_token
        + vision_encoder_bytes(largest_image_tokens, shape.vision_heads)
        + RUNTIME_OVERHEAD_BYTES
    )


def physical_memory_bytes() -> int | None:
    """Installed RAM, or None when the platform does not say."""
    if sys.platform == "win32":

        class _MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("sullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = _MemoryStatus()
        status.dwLength = ctypes.sizeof(_MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullTotalPhys)
        return None
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(
    tokens: int,
    *,
    n_ctx: int,
    context_length: int,
    memory_bytes: int,
    physical_bytes: int | None,
) -> None:
    """Raise a clear ``StorytellerError`` when the model or the machine cannot hold a run."""
    if tokens > context_length:
        raise StorytellerError(
            f"this run needs {tokens} tokens of context but the model holds at most "
            f"{context_length}: choose a lower detail, fewer photos or fewer --max-tokens"
        )
    if physical_bytes is not None and memory_bytes > physical_bytes:
        raise StorytellerError(
            f"this run needs about {memory_bytes / 2**30:.1f} GiB of memory (context of "
            f"{n_ctx} tokens) but this computer has {physical_bytes / 2**30:.1f} GiB: choose a "
            "lower detail, fewer photos, fewer --max-tokens or a smaller model"
        )
