"""Speculative decoding: several tokens per model evaluation, drawn from the same distribution
as token by token.

Where decoding is bound by memory bandwidth (a GPU, a CPU with cores to spare), one evaluation
reads every weight once and a batch of a few tokens costs little more than one. So each step
guesses (drafts) the next tokens and checks them all in one batch:

- **forced text** (strict format): where the grammar allows exactly one continuation (table
  headers, separator rows, ``## Image K``, closing tags), llguidance gives that text's canonical
  tokens (``LLMatcher.compute_ff_tokens``: the tokenizer's own tokens, holding back bytes that
  could merge with what follows);
- **n-gram lookup** over the prompt's text and everything written so far: the analysis repeats
  its table headers, ids and the fixed parts of rows, so the tokens that followed the last
  occurrence of the latest few tokens are a good guess.

Verification: ``[last, d1..dk]`` is decoded in one batch with logits at every position, then the
run's own sampler chain (grammar, top-k, top-p, temperature, seeded draw) draws at position 0,
1, ... while each draw equals the draft. Drawing from the target distribution p and accepting
when the draw equals the draft is the standard speculative acceptance rule for a deterministic
draft (q is one-hot on d: accept with probability min(1, p(d)/q(d)) = p(d); on rejection the
draw is distributed as p without d, renormalised, which is the rule's residual max(0, p - q)).
The chain is called once per output token in the same order as plain decoding, so its seeded
random stream and the grammar state advance exactly as they would token by token: the output
is identical, greedy or sampled, up to the float rounding of batched against single evaluation.
Rejected drafts are removed from the KV cache (``llama_memory_seq_rm``); the grammar only ever
sees output tokens.

Where the machine is compute-bound (few, busy cores), a batch costs nearly as much as its tokens
one by one and drafting loses time. So the decoder times its own evaluations (``DecodeTimer``),
tracks each drafter's acceptance (decaying counts with a prior), and picks the draft length that
maximises expected tokens per measured cost: a drafter that guesses badly, or batches that cost
too much, give plain decoding, with a one-token probe now and then to notice a change.
Floats: batched and single evaluations round differently (up to ~3e-3 on the logits of the F16
test model), so a near-tie can go the other way; greedy runs of the tiny model are identical.
"""

from __future__ import annotations

import ctypes
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

# Longest draft checked in one evaluation: a table header is about this long as forced text, and
# on the bench CPU a batch of 32 cost 9.9 tokens' time (bench/decode_speed.py has the curve).
MAX_DRAFT = 32
# n-gram lengths tried, longest first: a longer match is a more reliable guess, a 1-gram still
# beats nothing (on the golden 5-frame output, (8, 5, 3, 2, 1) accepted 1.87 tokens per step
# drafting up to 16, (4, 3, 2) 1.70).
NGRAM_SIZES = (8, 5, 3, 2, 1)
# The cost of a batch of n tokens relative to one token is 1 + extra * (n - 1), with ``extra``
# measured while writing (DecodeTimer). It depends on the machine far more than on the model:
# ~0.01 on a GPU, 0.6-1.1 on the 2 shared cores bench/decode_speed.py ran on. Until measured,
# this prior: optimistic enough that drafting is tried, so that it gets measured.
PRIOR_EXTRA_TOKEN_COST = 0.25
# A run that promises to repeat (temperature 0, or a fixed seed) drafts by a fixed cost instead
# of measured timings: the same tokens then give the same drafts, so the same batches and the
# same story (``repeatable_cost``). Batches cost about this much per extra token on the bench's
# shared CPU cores (bench/decode_speed.py: 0.6-1.1) and next to nothing on a GPU.
REPEATABLE_EXTRA_TOKEN_COST_CPU = 0.8
REPEATABLE_EXTRA_TOKEN_COST_GPU = 0.02
# A drafter switched off (by cost or acceptance) still drafts one token this often, so a change
# of load or of text brings it back.
PROBE_EVERY = 64


class Sampler(Protocol):
    """Draws one token from the logits at batch index ``index`` and advances its own state."""

    def sample(self, ctx: int, index: int = -1) -> int: ...


@dataclass(frozen=True)
class CostModel:
    """Relative cost of evaluating a batch of n tokens (1.0 for one token).

    ``points`` are measured (n, relative cost) pairs, n ascending; between them the cost is
    interpolated (CPU kernels make it anything but linear: on the bench machine 2 tokens cost
    2.05, 16 cost 8.6 and 32 cost 9.9). Beyond the last point, and without points, each extra
    token adds ``extra_token_cost``.
    """

    extra_token_cost: float = PRIOR_EXTRA_TOKEN_COST
    points: tuple[tuple[float, float], ...] = ()

    def batch_cost(self, n_tokens: int) -> float:
        if n_tokens <= 1:
            return 1.0
        last_n, last_cost = 1.0, 1.0
        for n, cost in self.points:
            if n_tokens <= n:
                return last_cost + (cost - last_cost) * (n_tokens - last_n) / (n - last_n)
            last_n, last_cost = n, cost
        return last_cost + self.extra_token_cost * (n_tokens - last_n)


def repeatable_cost(gpu: bool) -> CostModel:
    """The fixed cost model of a run that must draft the same way every time it is repeated."""
    extra = REPEATABLE_EXTRA_TOKEN_COST_GPU if gpu else REPEATABLE_EXTRA_TOKEN_COST_CPU
    return CostModel(extra_token_cost=extra)


def best_draft_length(acceptance: float, cost: CostModel, limit: int) -> int:
    """The draft length k <= ``limit`` that maximises expected output tokens per cost.

    With a per-token acceptance ``acceptance`` (a), a draft of k tokens yields 1 + a + a^2 + ...
    + a^k tokens on average (the corrected or next token always comes) for the cost of a batch
    of k + 1. k = 0 is plain decoding.
    """
    best, best_rate = 0, 1.0 / cost.batch_cost(1)
    expected, term = 1.0, 1.0
    for k in range(1, limit + 1):
        term *= acceptance
        expected += term
        rate = expected / cost.batch_cost(k + 1)
        if rate > best_rate:
            best, best_rate = k, rate
    return best


@dataclass
class DecodeTimer:
    """What decoding costs on this machine now, by batch size (1, 2-3, 4-7, 8-15, 16-31, 32+).

    Moving averages of the batch size and the seconds of each size class over the run's own
    evaluations (and the earlier runs on the same model), so the cost model follows the machine,
    its load and the context length.
    """

    prior: CostModel = field(default_factory=CostModel)
    weight: float = 0.1  # of the newest observation
    sizes: dict[int, tuple[float, float]] = field(default_factory=dict)  # class: (n, seconds)

    def observe(self, n_tokens: int, seconds: float) -> None:
        size_class = n_tokens.bit_length()
        if size_class not in self.sizes:
            self.sizes[size_class] = (float(n_tokens), seconds)
            return
        n, old = self.sizes[size_class]
        self.sizes[size_class] = (
            n + self.weight * (n_tokens - n),
            old + self.weight * (seconds - old),
        )

    @property
    def single_s(self) -> float | None:
        """Seconds of a one-token evaluation (None until one was timed)."""
        single = self.sizes.get(1)
        return single[1] if single is not None else None

    @property
    def cost(self) -> CostModel:
        single = self.single_s
        if not single:
            return self.prior
        points = tuple(
            (n, max(1.0, seconds / single))
            for size_class, (n, seconds) in sorted(self.sizes.items())
            if size_class > 1
        )
        return CostModel(self.prior.extra_token_cost, points)


@dataclass
class AcceptanceEstimate:
    """A drafter's per-token acceptance: decaying counts plus a prior.

    The counts fade every step, also while the drafter drafts nothing, so a drafter switched off
    by bad guesses drifts back to its prior and gets tried again later.
    """

    prior: float
    prior_weight: float = 2.0
    decay: float = 0.97
    accepted: float = 0.0
    tried: float = 0.0

    @property
    def value(self) -> float:
        return (self.accepted + self.prior * self.prior_weight) / (self.tried + self.prior_weight)

    def update(self, accepted: int, tried: int) -> None:
        self.accepted = self.accepted * self.decay + accepted
        self.tried = self.tried * self.decay + tried


@dataclass
class SpeculationStats:
    """Counts over one or more runs (for the log and the benchmark)."""

    tokens: int = 0  # output tokens
    evaluations: int = 0  # llama_decode calls while writing
    evaluated: int = 0  # tokens in those calls (drafts included)
    forced_drafted: int = 0
    forced_accepted: int = 0
    ngram_drafted: int = 0
    ngram_accepted: int = 0

    @property
    def tokens_per_evaluation(self) -> float:
        return self.tokens / self.evaluations if self.evaluations else 0.0

    def add(self, other: SpeculationStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class NgramDrafter:
    """Drafts the tokens that followed the latest earlier occurrence of the current n-gram."""

    def __init__(self, context: Sequence[int] = (), sizes: Sequence[int] = NGRAM_SIZES) -> None:
        self.sizes = tuple(sorted(sizes, reverse=True))
        self.history: list[int] = []
        # (n-gram) -> index in history of the token that followed its latest occurrence
        self._next: dict[tuple[int, ...], int] = {}
        self.extend(context)

    def extend(self, tokens: Sequence[int]) -> None:
        """Append written (or prompt) tokens to the history."""
        history = self.history
        for token in tokens:
            position = len(history)
            for n in self.sizes:
                if position >= n:
                    self._next[tuple(history[position - n : position])] = position
            history.append(token)

    def draft(self, pending: Sequence[int], limit: int) -> list[int]:
        """Up to ``limit`` tokens to follow history + ``pending`` (tokens drafted before these)."""
        if limit <= 0:
            return []
        tail = self.history[-max(self.sizes) :] + list(pending)
        for n in self.sizes:
            if len(tail) < n:
                continue
            start = self._next.get(tuple(tail[-n:]))
            if start is not None:
                return self.history[start : start + limit]
        return []


# llguidance 1.9.1's GBNF converter drops leading zeros from \\uXXXX escapes ("\\u00A1" becomes
# "\\uA1", which its regex engine refuses), so escapes become the characters themselves first.
_ESCAPE = re.compile(r"\\(\\|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})")


def _unescape_code_points(match: re.Match[str]) -> str:
    escape = match.group(1)
    if escape == "\\":
        return "\\\\"
    code = int(escape[1:], 16)
    if code < 0x80:
        return f"\\x{code:02X}"  # ASCII may be special in a class ("]", "-"): keep it escaped
    if 0xD800 <= code <= 0xDFFF:
        return match.group(0)  # a surrogate is no character; let the converter report it
    return chr(code)


# llguidance refuses a repetition of at most zero ("x{0,0}", which GBNF reads as nothing), as a
# grammar for one photo has ("images ::= imagenum (", " imagenum){0,0}"). A simple item (a
# group without nested groups, a rule name, a class or a string) repeated {0,0} is dropped.
_STRING = r'"(?:\\.|[^"\\])*"'
_NEVER = re.compile(
    rf"(?:\((?:{_STRING}|[^()\"])*\)|[\w-]+|\[(?:\\.|[^\]\\])*\]|{_STRING})\{{0,0\}}"
)


def gbnf_for_llguidance(gbnf: str) -> str:
    """``gbnf`` rewritten where llguidance's converter reads GBNF differently from llama.cpp."""
    return _NEVER.sub("", _ESCAPE.sub(_unescape_code_points, gbnf))


def llguidance_tokenizer(vocab: int) -> object | None:
    """llguidance's view of a llama.cpp vocabulary, or None without llguidance (~1 s: cache it).

    Control tokens (``<|im_end|>``) are marked special (llguidance's 0xFF prefix) so no grammar
    text can produce them; every other token is its bytes. llguidance's own helper also marks
    user-defined tokens that look like tags (``<think>`` in some vocabularies) special, and then
    cannot follow a grammar that writes ``<think>`` as text: llama.cpp's tokenizer always turns
    that text into the one token, which llguidance would then refuse.
    """
    try:
        from llguidance import LLTokenizer
    except ImportError:
        logger.info("llguidance is not installed: strict format runs without forced text")
        return None
    import llama_cpp

    pieces: list[bytes] = []
    size = 256
    buffer = ctypes.create_string_buffer(size)
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        length = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, True)
        if length < 0:  # longer than the buffer: grow it and read again
            size = -length
            buffer = ctypes.create_string_buffer(size)
            length = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, True)
        piece = buffer.raw[:length]
        if llama_cpp.llama_vocab_get_attr(vocab, token) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL:
            piece = b"\xff" + piece
        pieces.append(piece)
    tokenize = ctypes.cast(llama_cpp.llama_cpp._lib.llama_tokenize, ctypes.c_void_p).value
    return LLTokenizer.from_llamacpp(
        tokens=pieces,
        vocab_ptr=vocab,
        tokenize_fptr=tokenize,
        eos_token=llama_cpp.llama_vocab_eos(vocab),
    )


class ForcedText:
    """The grammar's forced continuation as canonical tokens, kept in step with the output."""

    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer
        self.matcher: object | None = None

    def set_grammar(self, gbnf: str | None) -> None:
        """Follow ``gbnf`` from its start (None: no grammar, nothing is forced)."""
        self.matcher = None
        if gbnf is None:
            return
        from llguidance import LLMatcher, grammar_from

        try:
            definition = grammar_from("gbnf", gbnf_for_llguidance(gbnf))
        except ValueError as err:
            logger.warning("forced text is off: llguidance cannot read the grammar (%s)", err)
            return
        matcher = LLMatcher(self.tokenizer, definition, log_level=0)
        if matcher.is_error():
            logger.warning(
                "forced text is off: llguidance refused the grammar (%s)", matcher.get_error()
            )
            return
        self.matcher = matcher

    def consume(self, token: int) -> None:
        """Advance over an output token; a token the grammar refuses turns forced text off."""
        if self.matcher is not None and not self.matcher.consume_token(token):
            logger.debug("forced text is off for this grammar: %s", self.matcher.get_error())
            self.matcher = None

    def forced(self) -> list[int]:
        """The tokens the grammar forces next (empty when there is a choice)."""
        if self.matcher is None:
            return []
        return list(self.matcher.compute_ff_tokens())

    def allowed_prefix(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` (from the current state) the grammar allows."""
        if self.matcher is None or not tokens:
            return len(tokens)
        return self.matcher.validate_tokens(list(tokens))


def accepted_tokens(draft: Sequence[int], draw: Callable[[int], int]) -> Iterator[int]:
    """The output of one verification step: draws at positions 0, 1, ... while they match.

    ``draw(i)`` samples the token that follows the batch's first i + 1 tokens (``last`` and
    ``draft[:i]``). The step ends at the first draw that differs from the draft (that draw is
    the correction and is output) or after the draw past the whole draft. Lazy: the caller may
    act on each token (switch grammars, stop) before the next draw.
    """
    for index in range(len(draft) + 1):
        token = draw(index)
        yield token
        if index == len(draft) or token != draft[index]:
            return


@dataclass
class _Drafters:
    ngram: NgramDrafter
    forced: ForcedText | None
    timer: DecodeTimer
    fixed_cost: CostModel | None  # set: use it instead of the measured cost
    forced_estimate: AcceptanceEstimate = field(default_factory=lambda: AcceptanceEstimate(0.9))
    ngram_estimate: AcceptanceEstimate = field(default_factory=lambda: AcceptanceEstimate(0.5))


class SpeculativeDecoder:
    """Writes tokens after the prompt with drafted, batch-verified steps (see the module doc).

    ``n_past`` is the position after the prompt (M-RoPE positions, not KV cells). The caller
    pulls tokens from ``tokens`` one by one and may change the grammar between them
    (``set_grammar``); ``close`` frees the batch and drops unverified cells from the KV cache.
    """

    def __init__(
        self,
        ctx: int,
        n_past: int,
        *,
        context_tokens: Sequence[int] = (),
        tokenizer: object | None = None,
        grammar_text: str | None = None,
        cost: CostModel | None = None,
        timer: DecodeTimer | None = None,
        max_draft: int = MAX_DRAFT,
    ) -> None:
        import llama_cpp

        self.ctx = ctx
        self.n_past = n_past  # position of the next cell to write
        self.max_draft = max_draft
        self.stats = SpeculationStats()
        forced = ForcedText(tokenizer) if tokenizer is not None else None
        self._drafters = _Drafters(
            NgramDrafter(context_tokens), forced, timer or DecodeTimer(), cost
        )
        self._since_draft = 0  # steps since the n-gram drafter last drafted
        self.set_grammar(grammar_text)
        self._batch = llama_cpp.llama_batch_init(max_draft + 1, 0, 1)
        self._memory = llama_cpp.llama_get_memory(ctx)

    @property
    def forcing(self) -> bool:
        """Whether forced text follows a grammar now (off without one or once it lost track)."""
        return self._drafters.forced is not None and self._drafters.forced.matcher is not None

    def set_grammar(self, grammar_text: str | None) -> None:
        """The grammar the sampler follows from the next token on (forced text follows it)."""
        if self._drafters.forced is not None:
            self._drafters.forced.set_grammar(grammar_text)

    # -- drafting -------------------------------------------------------------------------------

    def _draft(self, limit: int) -> tuple[list[int], int]:
        """The next draft and how many of its first tokens are forced text."""
        drafters = self._drafters
        cost = drafters.fixed_cost or drafters.timer.cost
        if drafters.timer.single_s is None and drafters.fixed_cost is None:
            return [], 0  # the first step is plain: it measures a single-token evaluation
        forced: list[int] = []
        if drafters.forced is not None:
            candidates = drafters.forced.forced()[:limit]
            keep = best_draft_length(drafters.forced_estimate.value, cost, len(candidates))
            forced = candidates[:keep]
            if keep < len(candidates):
                return forced, len(forced)
        room = limit - len(forced)
        ngram: list[int] = []
        if room > 0:
            length = best_draft_length(drafters.ngram_estimate.value, cost, room)
            if length == 0 and self._since_draft >= PROBE_EVERY:
                length = 1
            ngram = drafters.ngram.draft(forced, length)
            if ngram and drafters.forced is not None:
                ngram = ngram[: drafters.forced.allowed_prefix(forced + ngram) - len(forced)]
        self._since_draft = 0 if ngram else self._since_draft + 1
        return forced + ngram, len(forced)

    # -- evaluation -----------------------------------------------------------------------------

    def _decode(self, tokens: Sequence[int]) -> None:
        import llama_cpp

        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            # A text token's position is the same in every M-RoPE section: llama.cpp broadcasts
            # the one position given per token.
            batch.pos[i] = self.n_past + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        began = time.perf_counter()
        result = llama_cpp.llama_decode(self.ctx, batch)
        if result != 0:
            raise RuntimeError(f"llama_decode returned {result}")
        llama_cpp.llama_synchronize(self.ctx)  # a GPU backend may still be computing
        self._drafters.timer.observe(len(tokens), time.perf_counter() - began)
        self.stats.evaluations += 1
        self.stats.evaluated += len(tokens)

    def _drop_from(self, position: int) -> None:
        """Remove the cells at ``position`` and after (rejected drafts) from the KV cache."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._memory, 0, position, -1)

    def tokens(self, sampler: Sampler, budget: int) -> Iterator[int]:
        """Up to ``budget`` output tokens; the first is drawn from the prompt's last logits."""
        if budget <= 0:
            return
        token = sampler.sample(self.ctx, -1)
        written = 1
        self._commit(token)
        yield token
        while written < budget:
            draft, n_forced = self._draft(min(self.max_draft, budget - written - 1))
            start = self.n_past
            self._decode([token, *draft])
            outputs = 0
            for token in accepted_tokens(draft, lambda index: sampler.sample(self.ctx, index)):
                outputs += 1
                written += 1
                self.n_past += 1  # the cell of the batch token this draw followed is kept
                self._commit(token)
                yield token
            self._record(draft, n_forced, matched=outputs - 1)
            if self.n_past < start + len(draft) + 1:
                self._drop_from(self.n_past)

    def _commit(self, token: int) -> None:
        self.stats.tokens += 1
        self._drafters.ngram.extend((token,))
        if self._drafters.forced is not None:
            self._drafters.forced.consume(token)

    def _record(self, draft: Sequence[int], n_forced: int, matched: int) -> None:
        drafters = self._drafters
        stats = self.stats
        forced_ok = min(matched, n_forced)
        ngram_ok = max(0, matched - n_forced)
        stats.forced_drafted += n_forced
        stats.forced_accepted += forced_ok
        stats.ngram_drafted += len(draft) - n_forced
        stats.ngram_accepted += ngram_ok
        # Only the tokens up to the first rejection were tried.
        forced_tried = min(n_forced, matched + 1)
        drafters.forced_estimate.update(forced_ok, forced_tried)
        ngram_tried = min(len(draft) - n_forced, max(0, matched + 1 - n_forced))
        drafters.ngram_estimate.update(ngram_ok, ngram_tried)

    def close(self) -> None:
        """Free the batch; the KV cache keeps exactly the written tokens' cells."""
        import llama_cpp

        if self._batch is not None:
            self._drop_from(self.n_past)
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
            stats = self.stats
            logger.debug(
                "speculation: %d tokens in %d evaluations (forced %d/%d, n-gram %d/%d accepted)",
                stats.tokens,
                stats.evaluations,
                stats.forced_accepted,
                stats.forced_drafted,
                stats.ngram_accepted,
                stats.ngram_drafted,
            )
