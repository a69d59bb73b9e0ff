"""A changed album reads only what changed: the longest prompt prefix an earlier run read comes back.

On the tiny model through real llama.cpp, with landscape and portrait photos (so an image's
positions, max(rows, cols) of its merged grid, differ from its cells, and a rows/cols swap would
move every later position): appending, removing the last photo, replacing one in the middle and
reordering the last two read exactly the cells of the chunks after the shared prefix (counted
here from mtmd's own chunks), send no reused photo through the vision encoder, and give the
first token the logits of a cold run by a fresh backend whose caches hold nothing. The prefix
comes from the live context, from memory and from disk; across a larger context; never from
another model, projector, detail or K/V layout.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from engine_helpers import backend_in
from PIL import Image

from desktop_app.engine import llama_prompt
from desktop_app.engine.api import (
    CachedParts,
    Detail,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.prompt_prefix import chunk_prefixes

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

SAMPLING = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=6, seed=11)
LOGITS_ATOL = 0.02  # as test_engine_prompt_reuse (there: a restored vs a cold last token)


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory, tiny_image: Path) -> dict[str, Path]:
    """Landscape and portrait photos of different grids: a 168x112 (6x4 merged: 24 cells, 6
    positions), 112x168 (4x6), 224x112 (8x4: 32 cells, 8 positions), 84x140 (3x5), 140x84,
    and a 640x480 that low detail prepares smaller than normal detail."""
    folder = tmp_path_factory.mktemp("prefix-album")
    made = {"a": tiny_image}
    for name, size, colour in (
        ("b", (112, 168), (200, 40, 40)),
        ("c", (224, 112), (40, 200, 40)),
        ("d", (84, 140), (40, 40, 200)),
        ("x", (140, 84), (200, 200, 40)),
        ("e", (640, 480), (40, 200, 200)),
    ):
        image = Image.linear_gradient("L").resize(size).convert("RGB")
        Image.blend(image, Image.new("RGB", size, colour), 0.5).save(folder / f"{name}.png")
        made[name] = folder / f"{name}.png"
    return made


@pytest.fixture
def backend(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = backend_in(tiny_model, tmp_path)
    yield engine
    engine.close()


def request_of(album: dict[str, Path], names: str, **changes: object) -> StoryRequest:
    fields = {"photos": tuple(album[n] for n in names), "detail": Detail.LOW, "sampling": SAMPLING}
    return StoryRequest(**{**fields, **changes})


def run(backend: LlamaCppBackend, request: StoryRequest, *, first_only: bool = False) -> RunResult:
    """The run's result (``first_only``: stopped after the first token)."""
    seen = []

    def should_stop() -> bool:
        return first_only and bool(seen)

    for event in backend.generate(request, should_stop=should_stop):
        if isinstance(event, TokenEvent):
            seen.append(event)
        if isinstance(event, ResultEvent):
            return event.result
    raise AssertionError("no result")


def chunk_cells(backend: LlamaCppBackend, request: StoryRequest) -> list[int]:
    """The KV cells of each of the prompt's chunks, as mtmd splits it (text, photo, text, ...)."""
    from llama_cpp import mtmd_cpp

    from desktop_app.engine.images import prepare_image

    loaded = backend._loaded
    assert loaded is not None
    photos = [prepare_image(p, request.detail.token_budget) for p in request.photos]
    keys = [f"k{i}" for i in range(len(photos))]
    text = backend._prompt_text(request)
    chunks = llama_prompt.tokenize(loaded.mtmd_ctx, text, photos, keys, [False] * len(photos))
    try:
        return [
            mtmd_cpp.mtmd_input_chunk_get_n_tokens(mtmd_cpp.mtmd_input_chunks_get(chunks, i))
            for i in range(mtmd_cpp.mtmd_input_chunks_size(chunks))
        ]
    finally:
        mtmd_cpp.mtmd_input_chunks_free(chunks)


def cold_first_logits(
    tiny_model: TinyModel, root: Path, request: StoryRequest, seen: list[np.ndarray]
) -> np.ndarray:
    """The first token's logits from a fresh backend with every cache empty and kept nowhere."""
    fresh = backend_in(tiny_model, root)
    fresh.prompts.memory_bytes = fresh.prompts.disk_bytes = 0
    fresh.cache.memory_bytes = fresh.cache.disk_bytes = 0
    try:
        result = run(fresh, request, first_only=True)
    finally:
        fresh.close()
    assert not result.timings.prompt_reused and result.timings.prompt_cells_reused == 0
    return seen[-1]


# (album before, album after, chunks the two prompts share): text, photo, text, photo, ...
CHANGES = {
    "append": ("abc", "abcd", 6),  # the text before the photos and a, b, c
    "remove-last": ("abcd", "abc", 6),
    "replace-middle": ("abcd", "axcd", 3),  # the text and a
    "reorder-tail": ("abcd", "abdc", 5),  # the text, a, b (and the text between b and d)
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_album_reads_only_the_chunks_after_the_shared_prefix(
    backend: LlamaCppBackend,
    tiny_model: TinyModel,
    album: dict[str, Path],
    tmp_path: Path,
    first_logits: list[np.ndarray],
    change: str,
) -> None:
    before, after, shared = CHANGES[change]
    run(backend, request_of(album, before))
    # Only the prefix may spare the vision encoder: no embedding is kept anywhere now.
    backend.cache.clear_memory()
    shutil.rmtree(tmp_path / "embeddings", ignore_errors=True)
    read, encoded = backend.prompt_tokens_read, backend.photos_encoded

    changed = request_of(album, after)
    said = backend.cached(changed)
    result = run(backend, changed)

    cells = chunk_cells(backend, changed)
    assert len(cells) == 2 * len(after) + 1
    assert backend.prompt_tokens_read - read == sum(cells[shared:])
    assert result.timings.prompt_tokens == sum(cells)
    assert result.timings.prompt_cells_reused == sum(cells[:shared])
    assert not result.timings.prompt_reused
    assert backend.photos_encoded - encoded == len(after) - shared // 2
    assert said.photos_read == shared // 2 and not said.prompt
    assert result.timings.encode_s[: shared // 2] == (0.0,) * (shared // 2)

    restored = first_logits[-1]
    reference = cold_first_logits(tiny_model, tmp_path / "cold", changed, first_logits)
    np.testing.assert_allclose(restored, reference, rtol=0, atol=LOGITS_ATOL)


def test_the_same_album_again_reads_one_token_from_the_live_context(
    backend: LlamaCppBackend, album: dict[str, Path]
) -> None:
    request = request_of(album, "abc")
    run(backend, request)
    backend.prompts.clear_memory()  # nothing kept in memory: only the live context has it
    shutil.rmtree(backend.prompts.folder, ignore_errors=True)
    read = backend.prompt_tokens_read
    assert backend.cached(request) == CachedParts((True, True, True), True)
    again = run(backend, request)
    assert again.timings.prompt_reused
    assert backend.prompt_tokens_read - read == 1


def test_a_prefix_comes_back_from_disk_after_a_restart(
    tiny_model: TinyModel, album: dict[str, Path], tmp_path: Path
) -> None:
    first = backend_in(tiny_model, tmp_path)
    try:
        run(first, request_of(album, "abc"))
    finally:
        first.close()
    later = backend_in(tiny_model, tmp_path)
    try:
        appended = request_of(album, "abcd")
        assert later.cached(appended).describe(4) == "3 of 4 photos already read"
        assert later._loaded is None  # asking loaded nothing
        result = run(later, appended)
        cells = chunk_cells(later, appended)
        assert later.prompt_tokens_read == sum(cells[6:])
        assert later.photos_encoded == 1
        assert result.timings.prompt_cells_reused == sum(cells[:6])
    finally:
        later.close()


def _max_tokens_crossing(backend: LlamaCppBackend, small: StoryRequest, big: StoryRequest) -> int:
    """A ``max_tokens`` for which ``small`` fits the smallest context and ``big`` needs more."""
    from desktop_app.engine.images import prepare_image

    def n_ctx(request: StoryRequest, max_tokens: int) -> int:
        tokens = [prepare_image(p, request.detail.token_budget).tokens for p in request.photos]
        return backend.plan_context(backend._prompt_text(request), tokens, max_tokens)

    for max_tokens in range(4096, 0, -8):
        if n_ctx(small, max_tokens) == 4096 < n_ctx(big, max_tokens):
            return max_tokens
    raise AssertionError("no max_tokens crosses a context step")


def test_an_append_that_needs_a_larger_context_still_reads_only_the_new_chunks(
    backend: LlamaCppBackend,
    tiny_model: TinyModel,
    album: dict[str, Path],
    tmp_path: Path,
    first_logits: list[np.ndarray],
) -> None:
    small, big = request_of(album, "abc"), request_of(album, "abcd")
    sampling = dataclasses.replace(SAMPLING, max_tokens=_max_tokens_crossing(backend, small, big))
    small = dataclasses.replace(small, sampling=sampling)
    big = dataclasses.replace(big, sampling=sampling)
    run(backend, small, first_only=True)
    assert backend._loaded is not None and backend._loaded.n_ctx == 4096
    read = backend.prompt_tokens_read
    result = run(backend, big, first_only=True)
    assert backend._loaded.n_ctx > 4096  # loaded again, larger: the live context is gone
    cells = chunk_cells(backend, big)
    assert backend.prompt_tokens_read - read == sum(cells[6:])
    assert result.timings.prompt_cells_reused == sum(cells[:6])
    restored = first_logits[-1]
    reference = cold_first_logits(tiny_model, tmp_path / "cold", big, first_logits)
    np.testing.assert_allclose(restored, reference, rtol=0, atol=LOGITS_ATOL)


@pytest.mark.parametrize("other", ["model", "projector", "kv-layout", "detail"])
def test_a_state_of_another_model_projector_layout_or_detail_is_never_used(
    tiny_model: TinyModel, album: dict[str, Path], tmp_path: Path, other: str
) -> None:
    request = request_of(album, "ea")  # e is prepared smaller at low detail than at normal
    first = backend_in(tiny_model, tmp_path)
    try:
        run(first, request)
    finally:
        first.close()
    manifest = dict(tiny_model.manifest)
    files = {part: dict(info) for part, info in manifest.get("files", {}).items()}
    if other in ("model", "projector"):
        part = "text" if other == "model" else "mmproj"
        files[part]["sha256"] = "0" * 64  # the same names, another file
    later = LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=tmp_path / "embeddings",
        prompt_cache_dir=tmp_path / "prompts",
        manifest={**manifest, "files": files},
    )
    if other == "kv-layout":
        settings = later._reader.context_settings
        later._reader.context_settings = lambda: settings().replace("kv=f16", "kv=q8_0")
    try:
        again = request_of(album, "ea", detail=Detail.NORMAL) if other == "detail" else request
        said = later.cached(again)
        result = run(later, again)
        assert said.photos_read == 0 and not said.prompt
        assert not result.timings.prompt_reused
        # Another detail still shares the text before the photos; nothing else shares anything.
        reused = chunk_cells(later, again)[0] if other == "detail" else 0
        assert result.timings.prompt_cells_reused == reused
        assert later.prompt_tokens_read == result.timings.prompt_tokens - reused
    finally:
        later.close()


def test_chunk_digests_chain_every_chunk_before_them() -> None:
    marker = "<__media__>"
    text = f"sys{marker}between{marker}after"
    base = chunk_prefixes("layout", text, ["k1", "k2"])
    assert len(base) == 5
    assert chunk_prefixes("layout", text, ["k1", "k3"])[:3] == base[:3]  # same up to photo 2
    assert chunk_prefixes("layout", text, ["k1", "k3"])[3:] != base[3:]
    assert chunk_prefixes("layout", text, ["k2", "k1"])[0] == base[0]
    assert chunk_prefixes("layout", text, ["k2", "k1"])[1] != base[1]
    assert set(chunk_prefixes("other", text, ["k1", "k2"])).isdisjoint(base)
    other_text = f"Sys{marker}between{marker}after"
    assert set(chunk_prefixes("layout", other_text, ["k1", "k2"])).isdisjoint(base)
    with pytest.raises(ValueError, match="markers"):
        chunk_prefixes("layout", text, ["k1"])
