"""The time estimate: rates from the model's size, from this machine's runs, and a live clock.

Every expected number below is computed by hand in the comment beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from desktop_app.app.estimates import run_clock
from desktop_app.engine import speeds
from desktop_app.engine.api import (
    CachedParts,
    Detail,
    FinishReason,
    Phase,
    PhotoInfo,
    RunResult,
    SamplingParams,
    Timings,
)
from desktop_app.engine.speeds import RunClock, SpeedBook, Speeds

if TYPE_CHECKING:
    from conftest import TinyModel

RATES = Speeds(
    encode_s_per_token=0.02,
    prefill_tokens_per_s=10.0,
    decode_tokens_per_s=2.0,
    tokens_per_photo=400.0,
    measured=True,
    runs=3,
)


def result(
    timings: Timings, tokens: tuple[int, ...] = (100, 200), finish: FinishReason = FinishReason.STOP
) -> RunResult:
    photos = tuple(PhotoInfo(Path(f"{i}.jpg"), (10, 10), (10, 10), t) for i, t in enumerate(tokens))
    return RunResult("", finish, photos, SamplingParams(), "llama.cpp (CPU)", "m", timings)


def test_the_size_estimate_scales_the_reference_by_weights_and_cores() -> None:
    same = speeds.from_model_size(speeds.REFERENCE_TEXT_BYTES, speeds.REFERENCE_MMPROJ_BYTES, 2)
    assert same.encode_s_per_token == pytest.approx(speeds.REFERENCE_ENCODE_S_PER_TOKEN)
    assert same.prefill_tokens_per_s == pytest.approx(speeds.REFERENCE_PREFILL_TOKENS_PER_S)
    assert same.decode_tokens_per_s == pytest.approx(speeds.REFERENCE_DECODE_TOKENS_PER_S)
    assert not same.measured
    # Twice the text weights: decode (memory-bound) and prefill (compute-bound) both halve.
    bigger = speeds.from_model_size(
        2 * speeds.REFERENCE_TEXT_BYTES, speeds.REFERENCE_MMPROJ_BYTES, 2
    )
    assert bigger.decode_tokens_per_s == pytest.approx(speeds.REFERENCE_DECODE_TOKENS_PER_S / 2)
    assert bigger.prefill_tokens_per_s == pytest.approx(speeds.REFERENCE_PREFILL_TOKENS_PER_S / 2)
    # Four cores instead of two: all twice as fast; 16 cores: decoding only 4x (bandwidth).
    wider = speeds.from_model_size(speeds.REFERENCE_TEXT_BYTES, speeds.REFERENCE_MMPROJ_BYTES, 4)
    assert wider.prefill_tokens_per_s == pytest.approx(2 * speeds.REFERENCE_PREFILL_TOKENS_PER_S)
    assert wider.encode_s_per_token == pytest.approx(speeds.REFERENCE_ENCODE_S_PER_TOKEN / 2)
    assert wider.decode_tokens_per_s == pytest.approx(2 * speeds.REFERENCE_DECODE_TOKENS_PER_S)
    widest = speeds.from_model_size(speeds.REFERENCE_TEXT_BYTES, speeds.REFERENCE_MMPROJ_BYTES, 16)
    assert widest.prefill_tokens_per_s == pytest.approx(8 * speeds.REFERENCE_PREFILL_TOKENS_PER_S)
    assert widest.decode_tokens_per_s == pytest.approx(4 * speeds.REFERENCE_DECODE_TOKENS_PER_S)


def test_a_cold_run_estimate_adds_encode_prefill_and_decode() -> None:
    run = speeds.estimate(RATES, [256, 256], text_tokens=128, max_tokens=4096)
    assert run.encode_s == pytest.approx(10.24)  # 0.02 s x 512 image tokens
    assert run.prefill_s == pytest.approx(64.4)  # (128 + 2 x (256 + 2)) cells / 10 per s
    assert run.new_tokens == 860  # 60 + 2 photos x 400
    assert run.decode_s == pytest.approx(430.0)  # 860 / 2 per s
    assert run.total_s == pytest.approx(504.64)
    assert speeds.describe(run.total_s) == "about 8 min"  # 8.4 min
    short = speeds.estimate(RATES, [256, 256], text_tokens=128, max_tokens=300)
    assert short.new_tokens == 300 and short.decode_s == pytest.approx(150.0)  # capped


def test_a_cached_photo_costs_no_encoding_and_a_cached_prompt_only_the_writing() -> None:
    one = speeds.estimate(RATES, [256, 256], 128, 4096, CachedParts((False, True)))
    assert one.encode_s == pytest.approx(5.12)  # 0.02 s x the 256 tokens of photo 1
    assert one.prefill_s == pytest.approx(64.4)  # the prompt is read as cold
    assert one.total_s == pytest.approx(499.52)  # 5.12 + 64.4 + 430
    prompt = speeds.estimate(RATES, [256, 256], 128, 4096, CachedParts((False, False), True))
    assert prompt.encode_s == prompt.prefill_s == 0.0
    assert prompt.total_s == prompt.decode_s == pytest.approx(430.0)  # 860 tokens / 2 per s
    # From the photos' sizes: 640x480 as trained is 234 tokens (504x364 px: 18 x 13 patches).
    clock = run_clock(RATES, [(640, 480)], Detail.LOW, 4096, CachedParts((True,)))
    assert clock is not None
    sized = clock.plan
    assert sized.encode_s == 0.0 and sized.prefill_s == pytest.approx(36.4)  # (128+234+2) / 10
    assert CachedParts((False, True)).describe(2) == "1 of 2 photos cached"
    assert CachedParts((True, True)).describe(2) == "photos cached"
    assert CachedParts((), True).describe(2) == "photos and prompt cached"
    assert CachedParts().describe(2) == ""


def test_the_estimate_says_when_it_is_only_an_estimate() -> None:
    assert speeds.describe(59) == "under a minute"
    assert speeds.describe(90) == "about 2 min"
    assert speeds.describe(600, measured=False) == "about 10 min (estimate)"
    assert speeds.describe(150, left=True) == "about 2 min left"


def test_a_finished_run_replaces_the_size_estimate_then_is_averaged() -> None:
    estimate = speeds.from_model_size(10**9, 10**8, 2)
    timings = Timings(
        encode_s=(2.0, 0.0),  # the second photo came from the cache: not a measurement
        prompt_eval_s=50.0,
        prompt_tokens=500,
        generation_s=50.0,
        generated_tokens=100,
    )
    first = speeds.updated(estimate, result(timings))
    assert first.measured and first.runs == 1
    assert first.encode_s_per_token == pytest.approx(0.02)  # 2.0 s / 100 tokens
    assert first.prefill_tokens_per_s == pytest.approx(10.0)  # 500 / 50 s
    assert first.decode_tokens_per_s == pytest.approx(2.0)  # 100 / 50 s
    assert first.tokens_per_photo == pytest.approx(20.0)  # (100 - 60) / 2 photos
    faster = Timings(
        encode_s=(1.0, 1.0), prompt_eval_s=25.0, prompt_tokens=500, generation_s=25.0,
        generated_tokens=100,
    )  # fmt: skip
    second = speeds.updated(first, result(faster, finish=FinishReason.LENGTH))
    assert second.runs == 2
    assert second.encode_s_per_token == pytest.approx(0.04 / 3)  # (0.02 + 2 s / 300) / 2
    assert second.prefill_tokens_per_s == pytest.approx(15.0)  # (10 + 20) / 2
    assert second.decode_tokens_per_s == pytest.approx(3.0)  # (2 + 4) / 2
    assert second.tokens_per_photo == pytest.approx(20.0)  # cut at max_tokens: no story length


def test_a_reused_prompt_or_an_early_cancel_measures_nothing_it_did_not_do() -> None:
    reused = Timings(
        encode_s=(0.0, 0.0), prompt_eval_s=0.1, prompt_tokens=500, prompt_reused=True,
        generation_s=10.0, generated_tokens=40,
    )  # fmt: skip
    after = speeds.updated(RATES, result(reused, finish=FinishReason.LENGTH))
    assert after.prefill_tokens_per_s == RATES.prefill_tokens_per_s  # 5000 tok/s is no prefill
    assert after.encode_s_per_token == RATES.encode_s_per_token
    assert after.decode_tokens_per_s == pytest.approx(3.0)  # (2 + 40 / 10) / 2
    cancelled = Timings(generation_s=1.0, generated_tokens=3)
    assert speeds.updated(RATES, result(cancelled, finish=FinishReason.CANCELLED)) == RATES


def test_the_book_keeps_rates_per_model_across_sessions(tmp_path: Path) -> None:
    path = tmp_path / "speeds.json"
    timings = Timings(
        encode_s=(2.0, 4.0), prompt_eval_s=50.0, prompt_tokens=500, generation_s=50.0,
        generated_tokens=100,
    )  # fmt: skip
    SpeedBook(path).record("a.gguf|1|CPU", result(timings), lambda: RATES)
    fresh = SpeedBook(path)
    measured = fresh.get("a.gguf|1|CPU")
    assert measured is not None and measured.runs == 4
    assert measured.encode_s_per_token == pytest.approx(0.02)  # (0.02 + 6 s / 300) / 2
    assert fresh.get("b.gguf|1|CPU") is None  # another model has its own rates
    assert [p.name for p in tmp_path.iterdir()] == ["speeds.json"]  # atomic: no temp file left


def test_an_unreadable_book_falls_back_to_the_estimate_and_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "speeds.json"
    path.write_text("{ not json")
    book = SpeedBook(path)
    assert book.speeds("a|1|CPU", lambda: RATES) == RATES
    path.write_text(json.dumps({"format": 1, "models": {"a|1|CPU": {"decode_tokens_per_s": 0}}}))
    assert book.get("a|1|CPU") is None  # incomplete entry: not trusted
    book.record("a|1|CPU", result(Timings(generation_s=10.0, generated_tokens=20)), lambda: RATES)
    assert json.loads(path.read_text())["models"]["a|1|CPU"]["decode_tokens_per_s"] == 2.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_live_clock_counts_down_phase_by_phase() -> None:
    clock = FakeClock()
    run = RunClock(RATES, [256, 256], text_tokens=128, max_tokens=4096, clock=clock)
    assert run.remaining_s() == pytest.approx(504.64)  # before any phase: the whole estimate
    run.on_phase(Phase.ENCODING_PHOTO, 1)
    clock.now += 3.0
    assert run.remaining_s() == pytest.approx(10.24 - 3.0 + 64.4 + 430.0)
    run.on_phase(Phase.ENCODING_PHOTO, 2)
    assert run.remaining_s() == pytest.approx(5.12 + 64.4 + 430.0)  # one photo of 256 left
    run.on_phase(Phase.READING_PROMPT)
    clock.now += 60.0
    assert run.remaining_s() == pytest.approx(4.4 + 430.0)
    run.on_phase(Phase.WRITING)
    run.on_tokens(10)
    clock.now += 2.0
    assert run.remaining_s() == pytest.approx(850 / 2.0)  # too few tokens: the known rate
    run.on_tokens(90)
    clock.now += 23.0  # 100 tokens in 25 s: this run writes at 4 per s
    assert run.remaining_s() == pytest.approx(760 / 4.0)
    run.on_tokens(800)  # longer than the likely story: up to 32 more, never negative
    assert run.remaining_s() == pytest.approx(32 / (900 / 25.0))


def test_the_live_clock_of_a_run_that_finds_things_cached() -> None:
    clock = FakeClock()
    photo = RunClock(RATES, [256, 256], 128, 4096, cached=CachedParts((True, False)), clock=clock)
    assert photo.remaining_s() == pytest.approx(499.52)  # 5.12 + 64.4 + 430
    photo.on_phase(Phase.ENCODING_PHOTO, 2)
    clock.now += 2.0
    assert photo.remaining_s() == pytest.approx(5.12 - 2.0 + 64.4 + 430.0)
    prompt = RunClock(RATES, [256, 256], 128, 4096, cached=CachedParts((), True), clock=clock)
    assert prompt.remaining_s() == pytest.approx(430.0)  # loading: only the writing is ahead
    prompt.on_phase(Phase.READING_PROMPT)
    clock.now += 1.0
    assert prompt.remaining_s() == pytest.approx(430.0)  # restoring the state reads no prompt


@pytest.mark.slow
def test_the_cli_prints_the_estimate_and_a_run_turns_it_into_a_measurement(
    tiny_model: TinyModel, tiny_image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from desktop_app import paths
    from desktop_app.cli import main as cli_main

    command = ["tell", str(tiny_image), str(tiny_image), "--max-tokens", "24", "--seed", "1"]
    command += ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]
    assert cli_main(command) == 0
    first = capsys.readouterr().err
    assert "storyteller: under a minute for 2 photos at As trained (estimate from the " in first
    # The bars carry the remaining time while the run goes (the bar of each phase).
    assert "under a minute left (estimate)" in first
    # The run measured this machine: the next estimate is its own, and the book holds it; the
    # run left its photos and prompt in the disk caches, and the new backend finds them.
    (entry,) = json.loads(paths.speeds_file().read_text())["models"].values()
    assert entry["measured"] and entry["runs"] == 1 and entry["decode_tokens_per_s"] > 0
    assert cli_main(command) == 0
    second = capsys.readouterr().err
    expected = "storyteller: under a minute for 2 photos at As trained (estimate; photos and "
    assert f"{expected}prompt cached)\n" in second
    assert "under a minute left" in second
    assert cli_main([*command, "--quiet"]) == 0
    assert "left" not in capsys.readouterr().err
