"""Generate again on the same album: the prompt's KV state comes back, nothing is read twice.

On the tiny model through real llama.cpp: a re-run encodes no photo, reads one prompt token
instead of all of them, and writes exactly what a cold run writes at the same seed (the logits of
every sampled token match, so the restored M-RoPE positions are right); any change to what the
model sees misses; the disk copy survives a new backend, stays under its cap, and a damaged one
is dropped, never a crash.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from engine_helpers import backend_in
from PIL import Image

from desktop_app.engine import llama_prompt, llama_sampling, prompt_cache
from desktop_app.engine.api import (
    CachedParts,
    Detail,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
)
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.prompt_cache import PromptCache, SavedPrompt
from desktop_app.engine.prompt_prefix import ChunkMark

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

SAMPLING = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=12, seed=7)
# Every path reads the last prompt token alone, so restored and cold logits are bit-identical
# (test_engine_same_story); the tolerance only has to tell a wrong state apart: the first
# token's logits move by 0.2 or more when the restored position is off by one (measured), and
# every later one by several units.
LOGITS_ATOL = 0.02


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, tiny_image: Path) -> list[Path]:
    """The fixture photo (24 tokens: 6 positions, so n_past != cells), two other small ones, and
    a 640x480 one that low detail (256 tokens) prepares smaller than normal detail (391)."""
    folder = tmp_path_factory.mktemp("album")
    Image.linear_gradient("L").resize((140, 84)).convert("RGB").save(folder / "b.png")
    Image.new("RGB", (84, 112), (30, 140, 200)).save(folder / "c.png")
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(folder / "d.png")
    return [tiny_image, folder / "b.png", folder / "c.png", folder / "d.png"]


@pytest.fixture
def backend(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = backend_in(tiny_model, tmp_path)
    yield engine
    engine.close()


@pytest.fixture
def logits_seen(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The logits llama.cpp hands the sampler, one row per sampled token, in order."""
    import llama_cpp

    seen: list[np.ndarray] = []
    real_sample = llama_sampling.Sampler.sample

    def sample(self: llama_sampling.Sampler, ctx: int, index: int = -1) -> int:
        n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        seen.append(np.ctypeslib.as_array(pointer, shape=(n_vocab,)).copy())
        return real_sample(self, ctx, index)

    monkeypatch.setattr(llama_sampling.Sampler, "sample", sample)
    return seen


def run(backend: LlamaCppBackend, request: StoryRequest) -> RunResult:
    results = [
        e.result
        for e in backend.generate(request, should_stop=lambda: False)
        if isinstance(e, ResultEvent)
    ]
    assert len(results) == 1
    return results[0]


def forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any photo encoding or prompt reading fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the prompt was read again")

    monkeypatch.setattr(llama_prompt.PromptReader, "read", refuse)
    monkeypatch.setattr(llama_prompt, "encode", refuse)


def test_generate_again_reads_no_photo_and_writes_the_same_tokens(
    backend: LlamaCppBackend,
    photos: list[Path],
    logits_seen: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = StoryRequest(photos=tuple(photos[:2]), detail=Detail.LOW, sampling=SAMPLING)
    cold = run(backend, request)
    cold_logits = list(logits_seen)
    read_cold = backend.prompt_tokens_read
    assert not cold.timings.prompt_reused and backend.photos_encoded == 2
    assert read_cold == cold.timings.prompt_tokens  # every cell: text tokens and photos
    logits_seen.clear()

    forbid_reading(monkeypatch)
    again = run(backend, request)
    assert again.timings.prompt_reused
    assert backend.prompt_tokens_read == read_cold + 1  # only the last token, for its logits
    assert backend.photos_encoded == 2
    assert again.timings.prompt_tokens == cold.timings.prompt_tokens
    assert again.raw_output == cold.raw_output
    assert again.timings.generated_tokens == cold.timings.generated_tokens
    # Every sampled token saw the same distribution: the first one proves the restored KV and
    # the last prompt token's position; the later ones the position every new token gets.
    assert len(logits_seen) == len(cold_logits) > 1
    for restored, fresh in zip(logits_seen, cold_logits, strict=True):
        np.testing.assert_allclose(restored, fresh, rtol=0, atol=LOGITS_ATOL)


def test_the_saved_state_continues_from_the_m_rope_position_not_the_cell_count(
    backend: LlamaCppBackend, photos: list[Path]
) -> None:
    """The fixture photo fills 24 KV cells but advances positions by 6: continuing from the
    cell count would put every new token at the wrong position."""
    run(backend, StoryRequest(photos=(photos[0],), detail=Detail.LOW, sampling=SAMPLING))
    saved = next(iter(backend.prompts._memory.values()))
    assert saved.cells - saved.n_past == 24 - 6


@pytest.mark.parametrize(
    ("change", "still_cached", "photos_read"),
    [
        ("photo", (True, False), 1),  # c replaces d: c was never encoded; a is still read
        ("order", (True, True), 0),  # the same embeddings in another prompt
        ("detail", (True, False), 1),  # d is prepared larger; the small fixture photo is not
        ("instruction", (True, True), 0),  # the text before the photos changed: nothing shared
    ],
)
def test_any_change_to_what_the_model_sees_reads_the_prompt_again(
    backend: LlamaCppBackend,
    photos: list[Path],
    change: str,
    still_cached: tuple[bool, ...],
    photos_read: int,
) -> None:
    """From the first change on (test_engine_prompt_prefix: exactly what is read)."""
    a, _, c, d = photos
    request = StoryRequest(photos=(a, d), detail=Detail.LOW, sampling=SAMPLING)
    changed = {
        "photo": StoryRequest(photos=(a, c), detail=Detail.LOW, sampling=SAMPLING),
        "order": StoryRequest(photos=(d, a), detail=Detail.LOW, sampling=SAMPLING),
        "detail": StoryRequest(photos=(a, d), detail=Detail.NORMAL, sampling=SAMPLING),
        "instruction": StoryRequest(
            photos=(a, d), detail=Detail.LOW, sampling=SAMPLING, instruction="What happens?"
        ),
    }[change]
    first = run(backend, request)
    read, encoded = backend.prompt_tokens_read, backend.photos_encoded
    said = backend.cached(changed)  # asked before the run (the time estimate): it foretells it
    second = run(backend, changed)
    assert not first.timings.prompt_reused and not second.timings.prompt_reused
    assert backend.prompt_tokens_read - read > 1  # read again, not restored
    assert said == CachedParts(still_cached, prompt=False, photos_read=photos_read)
    assert backend.photos_encoded - encoded == still_cached.count(False)
    assert run(backend, request).timings.prompt_reused  # the first one is still remembered


def test_the_disk_copy_survives_a_new_backend(
    tiny_model: TinyModel,
    photos: list[Path],
    tmp_path: Path,
    logits_seen: list[np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = StoryRequest(photos=tuple(photos), detail=Detail.LOW, sampling=SAMPLING)
    first = backend_in(tiny_model, tmp_path)
    try:
        cold = run(first, request)
    finally:
        first.close()
    cold_logits = list(logits_seen)
    logits_seen.clear()
    assert len(list((tmp_path / "prompts").glob("*/*.kv"))) == 1
    forbid_reading(monkeypatch)
    later = backend_in(tiny_model, tmp_path)  # a restart: nothing in memory
    try:
        again = run(later, request)
    finally:
        later.close()
    assert again.timings.prompt_reused and later.photos_encoded == 0
    assert later.prompt_tokens_read == 1
    assert again.raw_output == cold.raw_output
    for restored, fresh in zip(logits_seen, cold_logits, strict=True):
        np.testing.assert_allclose(restored, fresh, rtol=0, atol=LOGITS_ATOL)


def key_of(tag: int) -> str:
    return f"{tag:02x}" * 32  # a digest's length, in its own two-character folder


def saved(size: int, tag: int) -> SavedPrompt:
    mark = ChunkMark(key_of(tag), n_pos=10 + tag, cells=20)
    return SavedPrompt(10 + tag, 20, 3, bytes([tag]) * size, (mark,))


def test_the_disk_cache_stays_under_its_cap_dropping_the_least_recently_used(
    tmp_path: Path,
) -> None:
    cache = PromptCache(tmp_path, disk_bytes=2 * 10_000 + 500)
    for tag, key in enumerate((key_of(0), key_of(1))):
        cache.put(key, saved(10_000, tag))
        cache.flush()
        path = cache.path(key)
        assert path is not None
        os.utime(path, (time.time() - 100 + tag, time.time() - 100 + tag))  # written long ago
    assert PromptCache(tmp_path).get(key_of(0)) is not None  # a restart reads it: the newest
    cache.put(key_of(2), saved(10_000, 2))
    cache.flush()
    fresh = PromptCache(tmp_path)
    assert fresh.get(key_of(1)) is None  # least recently used: dropped
    assert fresh.get(key_of(0)) == saved(10_000, 0)
    assert fresh.get(key_of(2)) == saved(10_000, 2)
    total = sum(p.stat().st_size for p in tmp_path.glob("*/*.kv"))
    assert total <= cache.disk_bytes


def test_a_damaged_cache_file_is_dropped_and_the_run_reads_the_prompt(
    tiny_model: TinyModel, photos: list[Path], tmp_path: Path
) -> None:
    request = StoryRequest(photos=tuple(photos[:2]), detail=Detail.LOW, sampling=SAMPLING)
    first = backend_in(tiny_model, tmp_path)
    try:
        cold = run(first, request)
    finally:
        first.close()
    (path,) = (tmp_path / "prompts").glob("*/*.kv")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the K/V data
    path.write_bytes(bytes(data))
    later = backend_in(tiny_model, tmp_path)
    try:
        again = run(later, request)
    finally:
        later.close()
    assert not again.timings.prompt_reused
    assert again.raw_output == cold.raw_output
    # The damaged file was replaced by a good one from this run.
    key = path.stem
    assert PromptCache(tmp_path / "prompts").get(key) is not None


def test_a_state_llama_cpp_refuses_is_dropped_and_never_used_again(
    backend: LlamaCppBackend, photos: list[Path]
) -> None:
    """A file that is intact but not a state llama.cpp can load (another build's layout)."""
    request = StoryRequest(photos=(photos[1],), detail=Detail.LOW, sampling=SAMPLING)
    cold = run(backend, request)
    (key,) = backend.prompts._memory
    good = backend.prompts.get(key)
    assert good is not None
    backend.prompts.put(key, dataclasses.replace(good, state=b"\x07" * 64))
    backend.preload(8192)  # loaded again: the live context is gone, only the kept state is left
    again = run(backend, request)
    assert not again.timings.prompt_reused
    assert again.raw_output == cold.raw_output
    assert backend.prompts.get(key) is not None  # the refused state was replaced by a good one
    assert backend.prompts.get(key).state == good.state


def test_restore_clears_the_context_when_llama_cpp_refuses(
    backend: LlamaCppBackend, photos: list[Path]
) -> None:
    import llama_cpp

    run(backend, StoryRequest(photos=(photos[1],), detail=Detail.LOW, sampling=SAMPLING))
    ctx = backend._loaded.llm.ctx
    memory = llama_cpp.llama_get_memory(ctx)
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) > 0
    assert not prompt_cache.restore(ctx, SavedPrompt(5, 5, 1, b"\x00" * 32))
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == -1  # empty, not half written
