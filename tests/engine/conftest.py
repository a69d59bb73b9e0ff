"""Engine test set-up shared by the modules that run the real llama.cpp backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from ci_tools import tool_missing

from desktop_app.engine import llama_sampling
from desktop_app.engine.llama_backend import LlamaCppBackend

if TYPE_CHECKING:
    from tests.conftest import TinyModel


@pytest.fixture(scope="module")
def backend(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaCppBackend]:
    """One backend on the tiny model per test module (loading it once keeps the module fast)."""
    engine = LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=tmp_path_factory.mktemp("embeddings"),
        manifest=tiny_model.manifest,
    )
    yield engine
    engine.close()


@pytest.fixture
def first_logits(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The logits of the first token each run samples, in run order."""
    import llama_cpp

    seen: list[np.ndarray] = []
    real_sample = llama_sampling.Sampler.sample

    def sample(self: llama_sampling.Sampler, ctx: int, index: int = -1) -> int:
        if not getattr(self, "_first_seen", False):
            self._first_seen = True
            n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
            pointer = llama_cpp.llama_get_logits_ith(ctx, index)
            seen.append(np.ctypeslib.as_array(pointer, shape=(n_vocab,)).copy())
        return real_sample(self, ctx, index)

    monkeypatch.setattr(llama_sampling.Sampler, "sample", sample)
    return seen


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """llama.cpp's own ``llama-server``, built once per machine (tests/llama_server_build.py).

    Under CI=true a failed build fails the tests that need it; elsewhere they skip, saying why.
    """
    from llama_server_build import ensure_llama_server
    from machine_cache import SetupError

    try:
        return ensure_llama_server()
    except SetupError as err:
        tool_missing(f"llama-server could not be built: {err}", "CI runs the server tests")
