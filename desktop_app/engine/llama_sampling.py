"""llama.cpp's sampler chain, the unique-id guard of strict format, and token bytes.

What the embedded backend draws each token with: ``Sampler`` (top-k -> top-p -> temperature ->
seeded draw, and an optional grammar), ``IdTokens`` (keeps ids unique within a table) and
``plain_tokens`` (one token per evaluation, when speculation is off).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator

import numpy as np

from desktop_app.engine.api import SamplingParams
from desktop_app.engine.llama_prompt import GenerationError
from desktop_app.engine.table_ids import TableIds

# top_k before top_p: transformers' sampling default (the model card's settings ran under it),
# and it keeps top_p from sorting the whole 152k vocabulary every token.
TOP_K = 50


def plain_tokens(llm: object, sampler: Sampler) -> Iterator[int]:
    """Token by token: draw from the last logits, evaluate the token, repeat."""
    while True:
        token = sampler.sample(llm.ctx)
        yield token
        llm.eval([token])  # only when the caller asks for the next token


def token_bytes(vocab: int, token: int) -> bytes:
    """The bytes a token stands for (control tokens give nothing)."""
    import llama_cpp

    buffer = ctypes.create_string_buffer(64)
    size = llama_cpp.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
    if size < 0:
        buffer = ctypes.create_string_buffer(-size)
        size = llama_cpp.llama_token_to_piece(vocab, token, buffer, -size, 0, False)
    return buffer.raw[: max(size, 0)]


class IdTokens:
    """The tokens that can finish or extend an id, to keep ids unique within a table.

    Built once per model from its vocabulary. ``forbid_repeats`` sets the logits of the tokens
    ``TableIds`` forbids to -inf before a token is drawn, so the free draw and the
    grammar-constrained draw both skip them (and both grammar instances stay in step). With
    speculation a draw reads the logits of a batch position: the mask goes there, and a draft
    token it removes is simply not accepted.
    """

    def __init__(self, vocab: int) -> None:
        import llama_cpp

        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        finishers = []
        self.with_digits: list[tuple[int, str]] = []
        for token in range(self.n_vocab):
            data = token_bytes(vocab, token)
            if not data:
                continue  # control tokens: the grammar decides about them
            if not data[:1].isdigit():
                finishers.append(token)
            if len(data) <= 16 and any(0x30 <= byte <= 0x39 for byte in data):
                self.with_digits.append((token, data.decode("utf-8", errors="replace")))
        # Pieces that do not start with a digit end an id whose digits are already written.
        self.finishers = np.array(finishers, dtype=np.int64)

    def guard(self, table_ids: TableIds) -> Callable[[int, int], None]:
        """The sampler's ``before_draw`` hook: mask repeats while an id is being written."""

        def before_draw(ctx: int, index: int) -> None:
            if table_ids.active:
                self.forbid_repeats(ctx, table_ids, index)

        return before_draw

    def forbid_repeats(self, ctx: int, table_ids: TableIds, index: int = -1) -> None:
        """Remove the tokens that would repeat an id of the current table from the draw that
        reads the logits of batch position ``index``."""
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(ctx, index)
        logits = np.ctypeslib.as_array(pointer, (self.n_vocab,))
        if table_ids.id_is_taken():
            logits[self.finishers] = -np.inf
        for token, piece in self.with_digits:
            if table_ids.forbids(piece):
                logits[token] = -np.inf


class Sampler:
    """llama.cpp's sampler chain: top-k -> top-p -> temperature -> seeded draw, and a grammar.

    With a grammar, checking all 152k vocabulary entries against it every token is what makes
    constrained generation slow. So a token is first drawn without the grammar and checked alone
    (one candidate); only when the grammar rejects it is the token drawn again from a chain that
    starts with the grammar (as llama.cpp's own common sampler does). Both grammar instances see
    every accepted token, so they stay in step.
    """

    def __init__(self, vocab: int, sampling: SamplingParams, grammar_text: str | None) -> None:
        import llama_cpp

        self.vocab = vocab
        self.sampling = sampling
        self.free_chain = self._chain(None)
        self.grammar_chain = None
        self.grammar_check = None
        self._candidate = llama_cpp.llama_token_data()
        self._single = llama_cpp.llama_token_data_array(
            data=ctypes.pointer(self._candidate), size=1, selected=-1, sorted=False
        )
        self.resampled = 0  # tokens the grammar rejected (for the benchmark)
        # Called with (ctx, batch index) before each draw: strict format's unique-id guard.
        self.before_draw: Callable[[int, int], None] | None = None
        if grammar_text is not None:
            self.set_grammar(grammar_text)

    def _grammar(self, grammar_text: str) -> int:
        import llama_cpp

        constraint = llama_cpp.llama_sampler_init_grammar(
            self.vocab, grammar_text.encode("utf-8"), b"root"
        )
        if not constraint:
            raise GenerationError("the strict-format grammar was rejected by llama.cpp")
        return constraint

    def _chain(self, grammar_text: str | None) -> int:
        import llama_cpp

        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if grammar_text is not None:
            try:
                llama_cpp.llama_sampler_chain_add(chain, self._grammar(grammar_text))
            except GenerationError:
                llama_cpp.llama_sampler_free(chain)
                raise
        sampling = self.sampling
        if sampling.temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        seed = llama_cpp.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed
        for stage in (
            llama_cpp.llama_sampler_init_top_k(TOP_K),
            llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1),
            llama_cpp.llama_sampler_init_temp(sampling.temperature),
            llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF),
        ):
            llama_cpp.llama_sampler_chain_add(chain, stage)
        return chain

    def set_grammar(self, grammar_text: str) -> None:
        """Constrain the tokens from now on by ``grammar_text`` (replacing any grammar)."""
        self._free_grammar()
        self.grammar_check = self._grammar(grammar_text)
        self.grammar_chain = self._chain(grammar_text)

    def _allowed(self, token: int) -> bool:
        import llama_cpp

        self._candidate.id = token
        self._candidate.logit = 0.0
        self._candidate.p = 0.0
        self._single.selected = -1
        llama_cpp.llama_sampler_apply(self.grammar_check, ctypes.byref(self._single))
        return self._candidate.logit != float("-inf")

    def sample(self, ctx: int, index: int = -1) -> int:
        """Draw from the logits of batch position ``index`` (-1: the last one evaluated)."""
        import llama_cpp

        if self.before_draw is not None:
            self.before_draw(ctx, index)
        token = llama_cpp.llama_sampler_sample(self.free_chain, ctx, index)
        if self.grammar_check is None:
            return token
        if self._allowed(token):
            llama_cpp.llama_sampler_accept(self.grammar_chain, token)
        else:
            self.resampled += 1
            token = llama_cpp.llama_sampler_sample(self.grammar_chain, ctx, index)
        llama_cpp.llama_sampler_accept(self.grammar_check, token)
        return token

    def _free_grammar(self) -> None:
        import llama_cpp

        for name in ("grammar_chain", "grammar_check"):
            sampler = getattr(self, name)
            if sampler is not None:
                llama_cpp.llama_sampler_free(sampler)
                setattr(self, name, None)

    def close(self) -> None:
        import llama_cpp

        self._free_grammar()
        if self.free_chain is not None:
            llama_cpp.llama_sampler_free(self.free_chain)
            self.free_chain = None
