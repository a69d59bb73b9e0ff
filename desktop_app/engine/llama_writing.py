"""Writing after the prompt: step 6 of the embedded backend's pipeline (see ``llama_backend``).

Tokens are drawn with llama.cpp's sampler chain (``llama_sampling``), checking ``should_stop``
between tokens, and streamed as text. By default several come per evaluation, drafted from forced
text and n-grams and verified in one batch (``speculation``: the same distribution as token by
token; the bytes can differ at near-ties). In strict format the analysis grammar gives way to the
story grammar where the analysis ends (``THINK_END``), and the analysis' ids stay unique.
"""

from __future__ import annotations

import codecs
import dataclasses
import time
from collections.abc import Generator
from dataclasses import dataclass

from desktop_app.engine import grammar
from desktop_app.engine.api import (
    Event,
    FinishReason,
    Phase,
    PhaseEvent,
    SamplingParams,
    ShouldStop,
    Timings,
    TokenEvent,
)
from desktop_app.engine.llama_model import Loaded
from desktop_app.engine.llama_prompt import GenerationError, text_tokens
from desktop_app.engine.llama_sampling import IdTokens, Sampler, plain_tokens, token_bytes
from desktop_app.engine.speculation import (
    CostModel,
    SpeculationStats,
    SpeculativeDecoder,
    llguidance_tokenizer,
)
from desktop_app.engine.table_ids import TableIds

# Where strict format switches from the analysis grammar to the story grammar.
THINK_END = "</think>\n"


@dataclass(frozen=True)
class Written:
    """What a run wrote, why it ended, and the run's timings with the writing added."""

    text: str
    finish: FinishReason
    timings: Timings


class Writer:
    """Writes after the prompt now in a loaded model's KV cache.

    One per backend: it keeps the strict format's id tokens (built on first use), and adds up
    over its runs what speculation did and how often the grammar made a token be drawn again.
    """

    def __init__(self) -> None:
        self.speculation_stats = SpeculationStats()
        self.grammar_resampled = 0  # strict format: tokens the grammar made us draw again
        self._id_tokens: IdTokens | None = None

    def write(
        self,
        loaded: Loaded,
        prompt_text: str,
        sampling: SamplingParams,
        strict: grammar.StrictFormat | None,
        should_stop: ShouldStop,
        *,
        speculate: bool,
        draft_cost: CostModel | None = None,
        started: float,
        timings: Timings,
    ) -> Generator[Event, None, Written]:
        """Yield the WRITING phase and token events until the model ends, ``max_tokens`` or
        ``should_stop``; ``speculate``: draft and batch-verify tokens, by ``draft_cost`` when
        given (a repeatable run: no measured timing decides a draft). ``started`` is when the
        run began (for the first token's time), ``timings`` are the run's so far."""
        import llama_cpp

        yield PhaseEvent(Phase.WRITING)
        llm = loaded.llm
        speculative = None
        if speculate:
            speculative = self._speculative(
                loaded, strict, text_tokens(llm, prompt_text), draft_cost
            )
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        think_grammar = strict.think_grammar() if strict else None
        sampler = Sampler(vocab, sampling, think_grammar)
        table_ids = None
        if strict is not None:
            if self._id_tokens is None:
                self._id_tokens = IdTokens(vocab)
            table_ids = TableIds()
            sampler.before_draw = self._id_tokens.guard(table_ids)
        if speculative is not None:
            speculative.set_grammar(think_grammar)
            stream = speculative.tokens(sampler, sampling.max_tokens)
        else:
            stream = plain_tokens(llm, sampler)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        finish = FinishReason.LENGTH
        first_token_s = 0.0
        writing_started = time.perf_counter()
        generated = 0
        reported = 0  # tokens already carried by a TokenEvent
        in_story = False
        recent = ""  # the last characters written, to see the analysis end
        try:
            for _ in range(sampling.max_tokens):
                if should_stop():
                    finish = FinishReason.CANCELLED
                    break
                try:
                    token = next(stream)
                except RuntimeError as err:
                    raise GenerationError(
                        f"llama.cpp failed while writing ({err}): the context may be full"
                    ) from err
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = FinishReason.STOP
                    break
                generated += 1
                text = decoder.decode(token_bytes(vocab, token))
                if text:
                    if not pieces:
                        first_token_s = time.perf_counter() - started
                    pieces.append(text)
                    yield TokenEvent(text, generated - reported)
                    reported = generated
                recent = (recent + text)[-len(THINK_END) :]
                if table_ids is not None and not in_story:
                    table_ids.feed(text)
                if strict is not None and not in_story and recent == THINK_END:
                    in_story = True
                    story_grammar = strict.story_grammar(
                        "".join(pieces), sampling.max_tokens - generated
                    )
                    sampler.set_grammar(story_grammar)
                    if speculative is not None:
                        speculative.set_grammar(story_grammar)
            # A cancelled run keeps exactly what was streamed; a finished one flushes any
            # incomplete UTF-8 at the end.
            tail = "" if finish is FinishReason.CANCELLED else decoder.decode(b"", final=True)
            if tail:
                pieces.append(tail)
                yield TokenEvent(tail, generated - reported)
        finally:
            stream.close()
            if speculative is not None:
                speculative.close()
                llm.n_tokens = speculative.n_past  # llama-cpp-python's own position count
                self.speculation_stats.add(speculative.stats)
            self.grammar_resampled += sampler.resampled
            sampler.close()
        writing = dataclasses.replace(
            timings,
            first_token_s=first_token_s,
            generation_s=time.perf_counter() - writing_started,
            generated_tokens=generated,
        )
        return Written("".join(pieces), finish, writing)

    @staticmethod
    def _speculative(
        loaded: Loaded,
        strict: grammar.StrictFormat | None,
        context: list[int],
        cost: CostModel | None,
    ) -> SpeculativeDecoder:
        """A speculative decoder to write after the prompt now in the KV cache."""
        import llama_cpp

        llm = loaded.llm
        if strict is not None and loaded.forced_tokenizer is None:
            loaded.forced_tokenizer = llguidance_tokenizer(
                llama_cpp.llama_model_get_vocab(llm.model)
            )
        return SpeculativeDecoder(
            llm.ctx,
            llm.n_tokens,
            context_tokens=context,
            tokenizer=loaded.forced_tokenizer if strict is not None else None,
            cost=cost,
            timer=loaded.decode_timer,
        )
