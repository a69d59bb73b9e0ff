"""Engine test set-up shared by the modules that run the real llama.cpp backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

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
