"""Helpers for the engine tests that run the real llama.cpp backend on the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.engine.llama_backend import LlamaCppBackend

if TYPE_CHECKING:
    from tests.conftest import TinyModel


def backend_in(tiny_model: TinyModel, root: Path) -> LlamaCppBackend:
    """A backend on the tiny model whose embedding and prompt caches live under ``root`` (a
    second one on the same ``root`` is the app after a restart)."""
    return LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=root / "embeddings",
        prompt_cache_dir=root / "prompts",
        manifest=tiny_model.manifest,
    )
