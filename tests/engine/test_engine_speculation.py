"""Speculative decoding: same stories as token by token, in fewer model evaluations.

The tiny random model writes noise, but noise it writes deterministically: a greedy run must
give the same bytes with and without speculation, and rejected drafts must leave no trace in the
KV cache. The acceptance rule is checked against hand-computed probabilities of llama.cpp's own
sampler chain (top-k, top-p, temperature, seeded draw).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from desktop_app.app.settings import Settings, save_settings
from desktop_app.cli import options as cli_options
from desktop_app.engine import grammar, speculation
from desktop_app.engine.api import ResultEvent, RunResult, SamplingParams, StoryRequest
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.engine.speculation import (
    CostModel,
    DecodeTimer,
    ForcedText,
    NgramDrafter,
    SpeculativeDecoder,
    accepted_tokens,
    best_draft_length,
    gbnf_for_llguidance,
    llguidance_tokenizer,
)

if TYPE_CHECKING:
    from conftest import TinyModel


# -- drafting and the cost model (pure) -----------------------------------------------------------


def test_ngram_drafts_what_followed_the_latest_match_preferring_the_longest() -> None:
    drafter = NgramDrafter([1, 2, 3, 4, 5, 9, 3, 4, 7, 8], sizes=(3, 2))
    # "3 4" last led to 7 8; "2 3 4" (longer) led to 5 9.
    assert drafter.draft([3, 4], 2) == [7, 8]
    assert drafter.draft([2, 3, 4], 3) == [5, 9, 3]
    drafter.extend([2, 3, 4, 6])
    assert drafter.draft([2, 3, 4], 1) == [6]  # the latest occurrence wins
    assert drafter.draft([42], 4) == []  # nothing to go on: no draft


def test_low_acceptance_falls_back_to_plain_decoding() -> None:
    cheap = CostModel(extra_token_cost=0.1)
    assert best_draft_length(0.05, cheap, 16) == 0
    assert best_draft_length(1.0, cheap, 16) == 16  # forced text the model always agrees with
    assert 0 < best_draft_length(0.6, cheap, 16) < 16
    # Where a batch costs as much as its tokens one by one, drafting never pays.
    assert best_draft_length(0.9, CostModel(extra_token_cost=1.0), 16) == 0


def test_batches_measured_expensive_turn_drafting_off_and_cheap_ones_on() -> None:
    timer = DecodeTimer()
    assert timer.cost == CostModel()  # the prior until a one-token evaluation was timed
    timer.observe(1, 0.100)
    timer.observe(4, 0.400)  # three extra tokens cost as much as three evaluations
    timer.observe(17, 1.700)
    assert timer.cost.batch_cost(4) == pytest.approx(4.0)
    assert timer.cost.batch_cost(10) == pytest.approx(10.0)  # between measured sizes
    assert best_draft_length(0.9, timer.cost, 16) == 0
    for _ in range(60):  # the machine got idle cores (or a GPU): the averages follow
        timer.observe(4, 0.106)
        timer.observe(17, 0.130)
    assert timer.cost.batch_cost(17) < 1.4
    assert best_draft_length(0.9, timer.cost, 16) == 16


def test_the_cost_between_and_beyond_measured_batch_sizes() -> None:
    measured = CostModel(extra_token_cost=0.25, points=((2.0, 2.0), (32.0, 10.0)))
    assert measured.batch_cost(1) == 1.0
    assert measured.batch_cost(17) == pytest.approx(6.0)  # halfway from 2 to 32
    assert measured.batch_cost(36) == pytest.approx(11.0)  # then the prior's 0.25 per token
    # Small drafts do not pay there, a long certain one does.
    assert best_draft_length(0.7, measured, 1) == 0
    assert best_draft_length(1.0, measured, 31) == 31


def test_acceptance_stops_at_the_first_disagreement_and_outputs_the_correction() -> None:
    target = [5, 6, 99, 8]  # what the sampler draws after each prefix
    assert list(accepted_tokens([5, 6, 7, 8], lambda i: target[i])) == [5, 6, 99]
    assert list(accepted_tokens([5, 6], lambda i: target[i])) == [5, 6, 99]  # one past the draft
    assert list(accepted_tokens([], lambda i: target[i])) == [5]


def _chain(seed: int, temperature: float, top_p: float) -> int:
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    for stage in (
        llama_cpp.llama_sampler_init_top_k(50),
        llama_cpp.llama_sampler_init_top_p(top_p, 1),
        llama_cpp.llama_sampler_init_temp(temperature),
        llama_cpp.llama_sampler_init_dist(seed),
    ):
        llama_cpp.llama_sampler_chain_add(chain, stage)
    return chain


def test_sampled_acceptance_follows_the_sampler_chains_distribution() -> None:
    """Accept a draft with the target probability p(d); on rejection draw from p without d.

    Target: probabilities 0.5, 0.3, 0.15, 0.05; top-p 0.9 keeps the first three (0.95), then
    temperature 0.5 squares them: 0.25, 0.09, 0.0225 over 0.3625 = 0.690, 0.248, 0.062. A draft
    of token 1 must be accepted 24.8% of the time (not the raw 30%), and rejections must be
    token 0 or 2 in the ratio 0.690 : 0.062 (token 3 never: top-p cut it).
    """
    import llama_cpp

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    data = (llama_cpp.llama_token_data * 4)()
    array = llama_cpp.llama_token_data_array(data=data, size=4, selected=-1, sorted=False)
    chain = _chain(seed=1234, temperature=0.5, top_p=0.9)

    def draw(_index: int) -> int:
        for token in range(4):
            data[token] = llama_cpp.llama_token_data(token, float(logits[token]), 0.0)
        array.size, array.selected, array.sorted = 4, -1, False
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
        return data[array.selected].id

    trials = 6000
    accepted = 0
    rejected = np.zeros(4)
    try:
        for _ in range(trials):
            output = list(accepted_tokens([1], draw))
            if output[0] == 1:
                accepted += 1
            else:
                rejected[output[0]] += 1
    finally:
        llama_cpp.llama_sampler_free(chain)
    assert accepted / trials == pytest.approx(0.248, abs=0.02)
    assert rejected[3] == 0 and rejected[1] == 0
    assert rejected[0] / rejected.sum() == pytest.approx(0.690 / 0.752, abs=0.02)


def test_the_grammar_converts_for_llguidance_with_its_unicode_classes() -> None:
    text = grammar.StrictFormat([(168, 112)], 4096).think_grammar()
    converted = gbnf_for_llguidance(text)
    assert "\\u00A0" in text and "\\u" not in converted and "\u00a0" in converted
    assert gbnf_for_llguidance('a ::= "\\\\u0041"') == 'a ::= "\\\\u0041"'  # an escaped backslash
    # One photo: "imagenum (", " imagenum){0,0}" is just one image number.
    assert 'imagenum (", " imagenum){0,0}' in text
    assert "images ::= imagenum \n" in converted


# -- on the tiny model ----------------------------------------------------------------------------

pytest_slow = pytest.mark.slow


def _run(backend: LlamaCppBackend, request: StoryRequest, speculation: bool) -> RunResult:
    backend.speculation = speculation
    result = None
    for event in backend.generate(request, should_stop=lambda: False):
        if isinstance(event, ResultEvent):
            result = event.result
    assert result is not None
    return result


@pytest_slow
@pytest.mark.parametrize("strict", [False, True], ids=["free", "strict"])
def test_a_greedy_run_is_byte_identical_with_and_without_speculation(
    backend: LlamaCppBackend, tiny_image: Path, strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine where batches are cheap, so that drafts are made whatever the load here
    # (a greedy run drafts by a fixed cost, not by the measured one: it promises to repeat).
    monkeypatch.setattr(speculation, "REPEATABLE_EXTRA_TOKEN_COST_CPU", 0.01)
    request = StoryRequest(
        photos=(tiny_image, tiny_image),
        sampling=SamplingParams(temperature=0.0, max_tokens=2500 if strict else 400, seed=3),
        strict_format=strict,
    )
    plain = _run(backend, request, speculation=False)
    before = backend.speculation_stats.evaluations
    fast = _run(backend, request, speculation=True)
    evaluations = backend.speculation_stats.evaluations - before
    assert fast.raw_output == plain.raw_output
    assert fast.timings.generated_tokens == plain.timings.generated_tokens
    # Drafts were accepted: far fewer model evaluations than tokens.
    assert evaluations < 0.9 * fast.timings.generated_tokens
    if strict:
        assert backend.speculation_stats.forced_accepted > 0


@pytest_slow
def test_a_sampled_run_with_a_fixed_seed_tells_the_same_story_again(
    backend: LlamaCppBackend, tiny_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed seed promises the same story: such a run decodes token by token; a random seed
    (nothing to repeat) still speculates."""
    monkeypatch.setattr(DecodeTimer, "cost", property(lambda _self: CostModel(0.01)))
    seeded = StoryRequest(
        photos=(tiny_image,),
        sampling=SamplingParams(temperature=0.7, top_p=0.9, max_tokens=300, seed=11),
    )
    before = backend.speculation_stats.tokens
    first = _run(backend, seeded, speculation=True)
    again = _run(backend, seeded, speculation=True)
    assert again.raw_output == first.raw_output
    assert backend.speculation_stats.tokens == before  # no speculative decoder wrote a token
    unseeded = dataclasses.replace(seeded, sampling=dataclasses.replace(seeded.sampling, seed=None))
    _run(backend, unseeded, speculation=True)
    assert backend.speculation_stats.tokens > before


class _Recorder:
    """Greedy sampler that keeps the logits it drew from, like the real one it reads by index."""

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self.rows: list[np.ndarray] = []

    def sample(self, ctx: int, index: int = -1) -> int:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        row = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()
        self.rows.append(row)
        return int(row.argmax())


@pytest_slow
def test_rejected_drafts_leave_the_kv_cache_as_plain_decoding_would(tiny_model: TinyModel) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(tiny_model.text_gguf), n_ctx=512, logits_all=False, verbose=False
    )
    try:
        n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llm.model))
        prompt = list(range(20, 80))

        def plain(count: int) -> tuple[list[int], list[np.ndarray]]:
            llm.reset()
            llm._ctx.kv_cache_clear()
            llm.eval(prompt)
            recorder = _Recorder(n_vocab)
            tokens = []
            for _ in range(count):
                tokens.append(recorder.sample(llm.ctx))
                llm.eval(tokens[-1:])
            recorder.sample(llm.ctx)  # the logits after the last token
            return tokens, recorder.rows

        expected_tokens, expected_rows = plain(40)

        llm.reset()
        llm._ctx.kv_cache_clear()
        llm.eval(prompt)
        decoder = SpeculativeDecoder(llm.ctx, llm.n_tokens, cost=CostModel(0.01))
        # Every draft is wrong: token 1 never follows (argmax of a random model rarely is 1).
        decoder._draft = lambda limit: ([1] * min(3, limit), 0)  # type: ignore[method-assign]
        recorder = _Recorder(n_vocab)
        tokens = list(decoder.tokens(recorder, 40))
        decoder.close()
        # One more step on the cache the decoder left: its logits must be plain decoding's.
        llm.n_tokens = decoder.n_past
        llm.eval(tokens[-1:])
        recorder.sample(llm.ctx)
        assert 1 not in expected_tokens
        assert tokens == expected_tokens
        assert decoder.stats.evaluations == 39 and decoder.stats.ngram_drafted > 0
        for got, want in zip(recorder.rows, expected_rows, strict=True):
            # Batched and single evaluations round differently (~1e-3 on the F16 model); a
            # stale cell from a rejected draft changes attention by far more.
            np.testing.assert_allclose(got, want, atol=2e-2)
    finally:
        llm.close()


@pytest_slow
def test_forced_text_follows_the_strict_grammar_with_the_tokenizers_tokens(
    tiny_model: TinyModel,
) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(tiny_model.text_gguf), n_ctx=256, verbose=False)
    try:
        tokenizer = llguidance_tokenizer(llama_cpp.llama_model_get_vocab(llm.model))
        forced = ForcedText(tokenizer)
        forced.set_grammar(grammar.StrictFormat([(168, 112)], 4096).think_grammar())
        first = forced.forced()
        text = llm.detokenize(first).decode()
        assert text.startswith("<think>\n## Image 1\n\n### Characters\n| Character ID |")
        # Canonical: exactly the tokens llama.cpp's tokenizer makes of that text.
        assert first == llm.tokenize(text.encode(), add_bos=False, special=False)
        for token in first:
            forced.consume(token)
        assert forced.forced() == []  # a Characters row or the Objects table: the model chooses
        row = llm.tokenize(b"| char1 | ", add_bos=False, special=False)
        assert forced.allowed_prefix(row) == len(row)
        objects_row = llm.tokenize(b"| obj1 | ", add_bos=False, special=False)
        assert forced.allowed_prefix(objects_row) < len(objects_row)  # not before the Objects table
    finally:
        llm.close()


@pytest_slow
def test_no_speculation_flag_and_setting_reach_the_backend(tiny_model: TinyModel) -> None:
    def backend_for(*argv: str) -> bool:
        parser = argparse.ArgumentParser()
        cli_options.add_tell_options(parser)
        args = parser.parse_args(["--model", str(tiny_model.text_gguf), *argv])
        backend = cli_options.backend_from_args(args)
        try:
            return backend.speculation
        finally:
            backend.close()

    assert backend_for() is True
    assert backend_for("--no-speculation") is False
    save_settings(Settings(speculation=False))
    assert backend_for() is False
