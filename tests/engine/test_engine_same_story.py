"""Same request, same story, whatever was cached.

On the tiny model through real llama.cpp, one request three times in one cache folder: cold,
again on the same backend (the live context), and after a restart (the state restored from
disk). Every token is drawn from bit-identical logits, so the text is identical: greedy without
speculation, a fixed seed at temperature 0.7, greedy with speculation (the default, here with
the measured batch timings made random, which must not change a draft), and an album with a
photo appended (its prefix restored) against a cold run of the longer album.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from engine_helpers import backend_in
from PIL import Image

from desktop_app.engine import llama_sampling
from desktop_app.engine.api import Detail, ResultEvent, RunResult, SamplingParams, StoryRequest
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.speculation import DecodeTimer

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

GREEDY = SamplingParams(temperature=0.0, max_tokens=160)
SEEDED = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=64, seed=5)


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory, tiny_image: Path) -> list[Path]:
    """The 168x112 fixture photo, a portrait and a wide landscape."""
    folder = tmp_path_factory.mktemp("same-story")
    Image.linear_gradient("L").resize((112, 168)).convert("RGB").save(folder / "b.png")
    Image.new("RGB", (224, 112), (90, 30, 160)).save(folder / "c.png")
    return [tiny_image, folder / "b.png", folder / "c.png"]


@pytest.fixture
def logits(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every logits row a sampler draws from, in order, over all runs."""
    import llama_cpp

    rows: list[np.ndarray] = []
    real_sample = llama_sampling.Sampler.sample

    def sample(self: llama_sampling.Sampler, ctx: int, index: int = -1) -> int:
        n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        rows.append(np.ctypeslib.as_array(pointer, shape=(n_vocab,)).copy())
        return real_sample(self, ctx, index)

    monkeypatch.setattr(llama_sampling.Sampler, "sample", sample)
    return rows


@pytest.fixture
def random_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured batch timings that vary wildly from run to run, as on a busy machine."""
    real_observe = DecodeTimer.observe
    noise = random.Random()  # unseeded: no two runs see the same timings

    def observe(self: DecodeTimer, n_tokens: int, seconds: float) -> None:
        real_observe(self, n_tokens, seconds * noise.uniform(0.05, 20.0))

    monkeypatch.setattr(DecodeTimer, "observe", observe)


def run(backend: LlamaCppBackend, request: StoryRequest) -> RunResult:
    (result,) = [
        e.result
        for e in backend.generate(request, should_stop=lambda: False)
        if isinstance(e, ResultEvent)
    ]
    return result


def three_times(
    tiny_model: TinyModel, root: Path, request: StoryRequest, *, speculation: bool
) -> tuple[list[RunResult], LlamaCppBackend]:
    """Cold, again on the same backend, and again after a restart, all in ``root``."""
    first = backend_in(tiny_model, root)
    first.speculation = speculation
    try:
        results = [run(first, request), run(first, request)]
    finally:
        first.close()
    later = backend_in(tiny_model, root)
    later.speculation = speculation
    try:
        results.append(run(later, request))
    finally:
        later.close()
    return results, later


def assert_same_story(results: list[RunResult], rows: list[np.ndarray]) -> None:
    texts = [r.raw_output for r in results]
    assert texts[0] and texts.count(texts[0]) == len(texts), texts
    per_run = len(rows) // len(results)
    assert per_run * len(results) == len(rows) and per_run > 1
    for index in range(1, len(results)):
        for a, b in zip(rows[:per_run], rows[index * per_run : (index + 1) * per_run], strict=True):
            assert np.array_equal(a, b)  # bit-identical, not merely close


@pytest.mark.parametrize(
    ("sampling", "speculation"),
    [(GREEDY, False), (SEEDED, True), (GREEDY, True)],
    ids=["greedy", "seed-at-0.7", "greedy-speculation"],
)
@pytest.mark.usefixtures("random_timings")
def test_one_request_three_times_tells_one_story(
    tiny_model: TinyModel,
    album: list[Path],
    tmp_path: Path,
    logits: list[np.ndarray],
    sampling: SamplingParams,
    speculation: bool,
) -> None:
    request = StoryRequest(photos=tuple(album), detail=Detail.LOW, sampling=sampling)
    results, _ = three_times(tiny_model, tmp_path, request, speculation=speculation)
    assert [r.timings.prompt_reused for r in results] == [False, True, True]
    assert_same_story(results, logits)


@pytest.mark.usefixtures("random_timings")
def test_greedy_speculation_drafts_on_a_schedule_no_timing_changes(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    request = StoryRequest(photos=tuple(album), detail=Detail.LOW, sampling=GREEDY)
    engine = backend_in(tiny_model, tmp_path)
    try:
        stats = []
        for _ in range(3):
            run(engine, request)
            stats.append(dataclasses.replace(engine.speculation_stats))
            engine.speculation_stats.__init__()
    finally:
        engine.close()
    assert stats[0].ngram_drafted + stats[0].forced_drafted > 0  # it did speculate
    assert stats[0] == stats[1] == stats[2]


def test_an_appended_photo_then_repeats_tells_the_story_a_cold_run_tells(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path, logits: list[np.ndarray]
) -> None:
    short = StoryRequest(photos=tuple(album[:2]), detail=Detail.LOW, sampling=GREEDY)
    full = dataclasses.replace(short, photos=tuple(album))
    engine = backend_in(tiny_model, tmp_path / "album")
    try:
        run(engine, short)
        logits.clear()
        results = [run(engine, full), run(engine, full)]  # a prefix restored, then the whole
    finally:
        engine.close()
    later = backend_in(tiny_model, tmp_path / "album")  # restored from disk
    try:
        results.append(run(later, full))
    finally:
        later.close()
    cold = backend_in(tiny_model, tmp_path / "cold")  # nothing cached anywhere
    try:
        results.append(run(cold, full))
    finally:
        cold.close()
    assert results[0].timings.prompt_cells_reused > 0 and not results[0].timings.prompt_reused
    assert results[1].timings.prompt_reused and results[2].timings.prompt_reused
    assert results[3].timings.prompt_cells_reused == 0
    assert_same_story(results, logits)


@pytest.fixture
def prompt_batches(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[int, int]]]:
    """Per run, the (tokens, first position) of each text batch llama.cpp evaluated before the
    first token was drawn (photos are decoded inside mtmd, out of Python's sight)."""
    from llama_cpp import _internals

    runs: list[list[tuple[int, int]]] = []
    real_decode = _internals.llama_cpp.llama_decode  # what llama-cpp-python's eval calls
    real_sample = llama_sampling.Sampler.sample
    reading = [False]

    def decode(ctx: int, batch: object) -> int:
        if reading[0]:
            runs[-1].append((batch.n_tokens, batch.pos[0]))
        return real_decode(ctx, batch)

    def sample(self: llama_sampling.Sampler, ctx: int, index: int = -1) -> int:
        reading[0] = False
        return real_sample(self, ctx, index)

    real_generate = LlamaCppBackend.generate

    def generate(self: LlamaCppBackend, request: StoryRequest, **kwargs: object) -> object:
        runs.append([])
        reading[0] = True
        return real_generate(self, request, **kwargs)

    monkeypatch.setattr(_internals.llama_cpp, "llama_decode", decode)
    monkeypatch.setattr(llama_sampling.Sampler, "sample", sample)
    monkeypatch.setattr(LlamaCppBackend, "generate", generate)
    return runs


def test_every_path_reads_the_prompt_in_the_same_batches_and_its_last_token_alone(
    tiny_model: TinyModel,
    album: list[Path],
    tmp_path: Path,
    prompt_batches: list[list[tuple[int, int]]],
) -> None:
    """A near-tie flips with the batch a token was evaluated in (not on this machine's tiny
    model, measured on the medium one): cold, prefix, live and restored runs batch alike."""
    short = StoryRequest(photos=tuple(album[:2]), detail=Detail.LOW, sampling=SEEDED)
    full = dataclasses.replace(short, photos=tuple(album))
    cold = backend_in(tiny_model, tmp_path / "cold")
    try:
        run(cold, full)
    finally:
        cold.close()
    engine = backend_in(tiny_model, tmp_path / "album")
    try:
        run(engine, short)
        prefixed = run(engine, full)
        run(engine, full)  # the live context
    finally:
        engine.close()
    later = backend_in(tiny_model, tmp_path / "album")
    try:
        run(later, full)  # the state restored from disk
    finally:
        later.close()
    cold_batches, _, prefix_batches, live_batches, disk_batches = prompt_batches
    last_position = cold_batches[-1][1]
    assert cold_batches[-1] == (1, last_position)  # the last token alone
    assert cold_batches[-2][1] + cold_batches[-2][0] == last_position  # right after the rest
    assert live_batches == disk_batches == [(1, last_position)]
    assert prefixed.timings.prompt_cells_reused > 0
    assert prefix_batches == cold_batches[-len(prefix_batches) :]
    assert len(prefix_batches) < len(cold_batches)
