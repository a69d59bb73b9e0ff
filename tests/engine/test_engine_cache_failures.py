"""The caches' failure paths (issue 27): the memory cap evicts the least recently used entry,
and a full disk (a real small tmpfs) loses only the cache, never the run; the log says so."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from engine_helpers import backend_in

from desktop_app.engine.api import ResultEvent, SamplingParams, StoryRequest
from desktop_app.engine.embedding_cache import EmbeddingCache

if TYPE_CHECKING:
    from conftest import TinyModel

SHAPE = (4, 8)
ENTRY_BYTES = 4 * 8 * 4  # float32


def entry(value: float) -> np.ndarray:
    return np.full(SHAPE, value, dtype=np.float32)


def test_the_memory_cap_evicts_the_least_recently_used_entry() -> None:
    cache = EmbeddingCache(None, memory_bytes=3 * ENTRY_BYTES)
    for key in ("aa", "bb", "cc"):
        cache.put(key, entry(1.0))
    assert cache.get("aa", SHAPE) is not None  # "aa" is now the most recent
    cache.put("dd", entry(2.0))  # over the cap: "bb", the least recently used, goes
    assert cache.get("bb", SHAPE) is None
    assert all(cache.get(key, SHAPE) is not None for key in ("aa", "cc", "dd"))
    assert cache._memory_used == 3 * ENTRY_BYTES
    cache.put("ee", np.zeros((64, 64), dtype=np.float32))  # larger than the cap: not kept
    assert cache.get("ee", (64, 64)) is None
    assert cache._memory_used == 3 * ENTRY_BYTES


def test_a_full_disk_loses_only_the_cache_and_the_log_says_so(
    small_disk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    folder = small_disk.path / "embeddings"
    cache = EmbeddingCache(folder)
    small_disk.fill()
    cache.put("aa11", entry(1.0))
    cache.put("bb22", entry(2.0))
    with caplog.at_level(logging.WARNING, logger="desktop_app.engine.tiered_cache"):
        cache.flush()  # no error: a cache that cannot be written is only a cache
    assert f"the cache cannot be written: the disk of {folder} is full" in caplog.text
    assert "the story goes on" in caplog.text
    assert [p for p in folder.rglob("*") if p.is_file()] == []  # no file, not even half of one
    np.testing.assert_array_equal(cache.get("aa11", SHAPE), entry(1.0))  # memory still has it

    small_disk.make_room()
    cache.put("cc33", entry(3.0))
    cache.flush()
    assert EmbeddingCache(folder).get("cc33", SHAPE) is not None  # the next run caches again


@pytest.mark.slow
def test_a_run_whose_caches_are_on_a_full_disk_still_tells_its_story(
    tiny_model: TinyModel, tiny_image: Path, small_disk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = backend_in(tiny_model, small_disk.path)
    small_disk.fill()
    request = StoryRequest(
        photos=(tiny_image,), sampling=SamplingParams(max_tokens=8, seed=3, temperature=0.0)
    )
    try:
        with caplog.at_level(logging.WARNING, logger="desktop_app.engine.tiered_cache"):
            (result,) = [
                event.result
                for event in engine.generate(request, should_stop=lambda: False)
                if isinstance(event, ResultEvent)
            ]
    finally:
        engine.close()
    assert result.timings.generated_tokens > 0
    assert "is full" in caplog.text
