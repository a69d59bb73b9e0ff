"""What a run costs before it starts: context tokens, context size and memory.

KV cells, not M-RoPE positions, are what fill a context: an image of ``t`` vision tokens takes
``t + 2`` cells (plus ``<|vision_start|>``/``<|vision_end|>``) although it advances positions by far
less, so llama-cpp-python's own checks under-count. Storyteller sizes the context itself from
``text + Σ(image tokens + 2) + max_tokens`` (docs/model-contract.md 5.3).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app.engine.api import Detail
from desktop_app.engine.gguf_info import ProjectorInfo, TextModelInfo
from desktop_app.engine.images import estimate_tokens
from desktop_app.engine.prompt import TOKENS_AROUND_IMAGE
from desktop_app.errors import StorytellerError

# System prompt + ChatML markup + instruction in Qwen's tokenizer is about 95 tokens; the GUI's
# estimate rounds up. The llama.cpp backend counts the real prompt instead.
PROMPT_TEXT_TOKENS = 128
# Contexts are allocated in steps of this many cells.
CONTEXT_STEP = 256
# Tokens llama.cpp decodes at once (n_batch = n_ubatch): its compute buffers are sized for it.
BATCH_TOKENS = 512
# What a run holds beside the buffers counted below: Python, numpy, Pillow and llama.cpp's own
# runtime, the prepared photos and llama.cpp's small output buffers (measured on the 7B shape:
# bench/real_scale.py).
RUNTIME_OVERHEAD_BYTES = 320 * 1024 * 1024
# The vision encoder (flash attention, as llama.cpp runs it on CPU and GPU) keeps a few
# activations per patch (4 patches per output token): 58 MiB measured for a 234-token photo.
VISION_BYTES_PER_PATCH = 65_000


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a model that decide its KV-cache and vision-encoder memory."""

    n_layers: int
    n_kv_heads: int
    head_dim: int
    context_length: int
    vision_heads: int = 16
    weights_bytes: int = 0
    n_heads: int = 28
    ffn_length: int = 18944

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of F16 K and V cache per context cell."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * 2


def shape_of(text: TextModelInfo, projector: ProjectorInfo) -> ModelShape:
    """The shape of the model in these two GGUF files, as their headers describe it: its own
    layers, heads and context length, and its real weights (both files' sizes: a Q8_0 or F16
    model weighs what it weighs)."""
    return ModelShape(
        n_layers=text.n_layers,
        n_kv_heads=text.n_kv_heads,
        head_dim=text.head_dim,
        context_length=text.context_length,
        vision_heads=projector.vision_heads,
        weights_bytes=text.file_size + projector.file_size,
        n_heads=text.n_heads,
        ffn_length=text.feed_forward_length,
    )


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


def vision_encoder_bytes(image_tokens: int, vision_heads: int = 16) -> int:
    """Peak compute memory of the vision encoder for one image.

    Qwen2.5-VL's encoder sees 4 patches per output token. With flash attention (llama.cpp's
    choice wherever it is supported) no per-head score matrix is kept: activations grow with
    the patches, plus the dense window mask of (4t)² floats.
    """
    patches = 4 * image_tokens
    return patches * VISION_BYTES_PER_PATCH + patches * patches * 4


def text_compute_bytes(shape: ModelShape, n_ctx: int) -> int:
    """llama.cpp's compute buffer for the text model: one batch's attention scores over the
    whole context (no flash attention on a CPU) and its FFN activations, in float32."""
    hidden = shape.n_heads * shape.head_dim
    return 4 * BATCH_TOKENS * (n_ctx * shape.n_heads + 2 * shape.ffn_length + 2 * hidden)


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
    memory = run_memory_bytes(shape, n_ctx, max(image_tokens, default=0), tokens - max_tokens)
    return RunEstimate(tokens=tokens, n_ctx=n_ctx, memory_bytes=memory, image_tokens=image_tokens)


def run_memory_bytes(
    shape: ModelShape, n_ctx: int, largest_image_tokens: int, prompt_cells: int | None = None
) -> int:
    """Memory a run takes (its peak resident set): both model files read into memory, a KV
    cache of ``n_ctx`` cells, the text model's compute buffer, the vision encoder's peak on the
    largest photo, the copy of the prompt's KV state kept for Generate-again (``prompt_cells``,
    at most the whole context) and the runtime."""
    saved_prompt = n_ctx if prompt_cells is None else min(prompt_cells, n_ctx)
    return (
        shape.weights_bytes
        + n_ctx * shape.kv_bytes_per_token
        + text_compute_bytes(shape, n_ctx)
        + vision_encoder_bytes(largest_image_tokens, shape.vision_heads)
        + saved_prompt * shape.kv_bytes_per_token
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
