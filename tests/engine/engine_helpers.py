"""Helpers for the engine tests that run the real llama.cpp backend on the tiny model."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from desktop_app.engine import llama_prompt, photo_encoder
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


class Gate:
    """Holds every vision encode until ``open``; ``fail`` makes the held encode raise."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, fail: bool = False) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()
        self.finished = threading.Event()
        real = llama_prompt.encode

        def held(*args: object) -> np.ndarray:
            self.entered.set()
            assert self.opened.wait(30), "the test never opened the gate"
            try:
                if fail:
                    raise llama_prompt.GenerationError("the vision encoder failed (test)")
                return real(*args)
            finally:
                self.finished.set()

        monkeypatch.setattr(photo_encoder.llama_prompt, "encode", held)

    def open(self) -> None:
        self.opened.set()


def join_vision_threads() -> None:
    """Let encodes left running end here (they would free a projector in a later test)."""
    for thread in threading.enumerate():
        if thread.name == photo_encoder.THREAD_NAME:
            thread.join(30)
