"""Decode speed: what a batch of n tokens costs, and what speculation gains on realistic text.

Two tables per model:

1. **Batch cost**: one ``llama_decode`` of n = 1, 2, 4, ... tokens (logits at every position,
   as verification needs) after a prompt of ``--kv`` cells, against n single-token decodes.
   Speculation only pays where the cost of n tokens stays near that of one.
2. **Replay**: a random model writes noise, so acceptance is measured on realistic text. The
   golden 5-frame output (tests/story/golden/raw) is teacher-forced through the real
   ``SpeculativeDecoder`` on the real model: its sampler returns the golden token at each
   position (after drawing greedily from the real logits, so sampling costs what it costs), so
   every draft, batch, verification and KV rollback happens as in a run that writes this text.
   Printed: tokens per model evaluation, where the accepted drafts came from, and the measured
   time against token-by-token decoding of the same text, for the analysis (up to
   ``</think>``) and the whole output; with ``--strict`` the strict-format grammar drives the
   forced text (the golden text must be in the grammar's layout for that part to count).

Models: the tiny test model (always) and the 334M synthetic model of bench/convert.py (Q4_K_M,
made once in ``--workdir``; ``--no-synthetic`` skips it), plus any ``--model TEXT.gguf``.
The tokenizer of the tiny and synthetic models is the test fixture's (600 tokens, mostly
single bytes and short merges), so token counts are higher and per-token guesses easier than
with Qwen's 151k-token vocabulary: read tokens per evaluation with that in mind.

Usage: ``python bench/decode_speed.py [--model TEXT.gguf] [--workdir DIR] [--strict]
[--golden FILE] [--repeat N]``. Best of ``--repeat`` runs (a shared machine only ever slows a
run down).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from desktop_app.engine.grammar import StrictFormat  # noqa: E402
from desktop_app.engine.llama_writing import THINK_END  # noqa: E402
from desktop_app.engine.prompt import build_prompt  # noqa: E402
from desktop_app.engine.speculation import (  # noqa: E402
    MAX_DRAFT,
    DecodeTimer,
    ForcedText,
    NgramDrafter,
    SpeculationStats,
    SpeculativeDecoder,
    llguidance_tokenizer,
)

GOLDEN = REPO / "tests" / "story" / "golden" / "raw" / "clean_5_frames.txt"
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
N_CTX = 8192


@dataclass(frozen=True)
class BatchCost:
    n_tokens: int
    seconds: float  # best time of one decode of n tokens

    def relative(self, single: float) -> float:
        return self.seconds / single


def tiny_model(folder: Path) -> Path:
    from convert import convert_checkpoint

    if not (folder / "tiny-qwen25vl-F16.gguf").exists():
        convert_checkpoint(
            REPO / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint",
            folder,
            quant="F16",
            mmproj_type="f16",
            name="tiny-qwen25vl",
            force=True,
        )
    return folder / "tiny-qwen25vl-F16.gguf"


def synthetic_model(folder: Path) -> Path:
    """bench/convert.py's 334M synthetic checkpoint, converted to Q4_K_M once."""
    target = folder / "synthetic-Q4_K_M.gguf"
    if target.exists():
        return target
    from convert import convert_checkpoint

    spec = importlib.util.spec_from_file_location("bench_convert", REPO / "bench" / "convert.py")
    bench_convert = importlib.util.module_from_spec(spec)
    saved = sys.path[:]
    spec.loader.exec_module(bench_convert)  # it edits sys.path on import
    sys.path[:] = saved
    checkpoint = folder / "checkpoint"
    bench_convert.make_checkpoint(checkpoint)
    convert_checkpoint(checkpoint, folder, quant="Q4_K_M", mmproj_type="f16", name="synthetic")
    return target


class Model:
    """A text GGUF loaded for raw decoding (no mmproj: photos are stood in for by filler)."""

    def __init__(self, path: Path, threads: int) -> None:
        import llama_cpp

        self.path = path
        self.llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=N_CTX,
            n_batch=512,
            n_ubatch=512,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            verbose=False,
        )
        self.ctx = self.llm.ctx
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(512, 0, 1)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=special)

    def decode(self, tokens: list[int], start: int, all_logits: bool = True) -> None:
        import llama_cpp

        batch = self.batch
        for offset in range(0, len(tokens), 512):
            part = tokens[offset : offset + 512]
            batch.n_tokens = len(part)
            for i, token in enumerate(part):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or offset + i == len(tokens) - 1
            if llama_cpp.llama_decode(self.ctx, batch) != 0:
                raise RuntimeError("llama_decode failed")

    def reset_to(self, position: int) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self.memory, 0, position, -1)

    def prompt(self, kv_cells: int) -> tuple[list[int], int]:
        """Decode the real prompt text plus filler up to ``kv_cells``; its text tokens, length."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self.memory, True)
        text = self.tokenize(build_prompt("Create a story based on these images.", 5), True)
        rng = np.random.default_rng(0)
        n_vocab = min(llama_cpp.llama_vocab_n_tokens(self.vocab), 500)
        filler = [int(t) for t in rng.integers(0, n_vocab, max(0, kv_cells - len(text)))]
        tokens = filler + text  # filler first: the photos come before the text's end
        self.decode(tokens, 0, all_logits=False)
        return text, len(tokens)

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)
        self.llm.close()


def batch_costs(model: Model, kv_cells: int, repeat: int) -> list[BatchCost]:
    _, start = model.prompt(kv_cells)
    rng = np.random.default_rng(1)
    batches = {n: [int(t) for t in rng.integers(10, 500, n)] for n in BATCH_SIZES}
    times: dict[int, list[float]] = {n: [] for n in BATCH_SIZES}
    for _ in range(repeat * 3):
        for n, tokens in batches.items():  # sizes interleaved: a load spike hits them all alike
            began = time.perf_counter()
            model.decode(tokens, start)
            times[n].append(time.perf_counter() - began)
            model.reset_to(start)
    return [BatchCost(n, min(times[n])) for n in BATCH_SIZES]


class GoldenSampler:
    """Teacher forcing: draws greedily from the real logits (for its cost), returns the golden token."""

    def __init__(self, tokens: list[int]) -> None:
        import llama_cpp

        self.tokens = tokens
        self.position = 0
        self.chain = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        llama_cpp.llama_sampler_chain_add(self.chain, llama_cpp.llama_sampler_init_greedy())

    def sample(self, ctx: int, index: int = -1) -> int:
        import llama_cpp

        llama_cpp.llama_sampler_sample(self.chain, ctx, index)
        token = self.tokens[self.position]
        self.position += 1
        return token

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_sampler_free(self.chain)


@dataclass(frozen=True)
class Replay:
    analysis_s: float  # time to write the analysis (through "</think>\n")
    total_s: float
    analysis_tokens: int
    stats: SpeculationStats
    grammar_lost: int | None = None  # strict: the golden token where it left the grammar


def replay(
    model: Model,
    golden: str,
    kv_cells: int,
    *,
    speculate: bool,
    strict: StrictFormat | None,
    tokenizer: object | None,
    timer: DecodeTimer,
) -> Replay:
    """Write ``golden`` through the real decoder, speculating or token by token."""
    context, n_past = model.prompt(kv_cells)
    tokens = model.tokenize(golden)
    # The prompt's last token is decoded with its logits: the first golden token follows it.
    sampler = GoldenSampler(tokens)
    decoder = SpeculativeDecoder(
        model.ctx,
        n_past,
        context_tokens=context,
        tokenizer=tokenizer if strict is not None else None,
        timer=timer,  # measures the cost of batches as the app does, across runs
        max_draft=MAX_DRAFT if speculate else 0,
    )
    decoder.set_grammar(strict.think_grammar() if strict is not None else None)
    written = b""
    analysis_s = 0.0
    analysis_tokens = 0
    began = time.perf_counter()
    in_story = False
    grammar_lost = None
    for count, token in enumerate(decoder.tokens(sampler, len(tokens)), start=1):
        written += model.llm.detokenize([token])
        if strict is not None and grammar_lost is None and not decoder.forcing:
            grammar_lost = count
        if not in_story and written.endswith(THINK_END.encode()):
            in_story = True
            analysis_s = time.perf_counter() - began
            analysis_tokens = count
            if strict is not None:
                decoder.set_grammar(
                    strict.story_grammar(written.decode(errors="replace"), 10 * len(tokens))
                )
    total_s = time.perf_counter() - began
    decoder.close()
    sampler.close()
    if written != golden.encode():
        raise RuntimeError("the replay did not write the golden text")
    return Replay(analysis_s, total_s, analysis_tokens, decoder.stats, grammar_lost)


def best(results: list[Replay]) -> Replay:
    """The fastest run (its analysis time may come from another, equally undisturbed one)."""
    fastest = min(results, key=lambda r: r.total_s)
    return Replay(
        min(r.analysis_s for r in results),
        fastest.total_s,
        fastest.analysis_tokens,
        fastest.stats,
        fastest.grammar_lost,
    )


def print_costs(name: str, rows: list[BatchCost]) -> float:
    """Print the batch-cost table; returns the fitted extra cost per token."""
    single = rows[0].seconds
    print(f"\n{name}: one decode of n tokens (logits at every position)")
    print(f"{'n':>4} {'ms/decode':>10} {'ms/token':>9} {'cost vs 1':>10} {'extra/token':>12}")
    extras = []
    for row in rows:
        rel = row.relative(single)
        extra = (rel - 1) / (row.n_tokens - 1) if row.n_tokens > 1 else 0.0
        if 1 < row.n_tokens <= 16:
            extras.append(extra)
        print(
            f"{row.n_tokens:4d} {row.seconds * 1e3:10.2f} {row.seconds * 1e3 / row.n_tokens:9.2f} "
            f"{rel:10.2f} {extra:12.3f}"
        )
    return statistics.median(extras) if extras else 0.0


def print_replay(name: str, plain: Replay, spec: Replay, extra: float) -> None:
    stats = spec.stats
    print(f"\n{name}: replay of {stats.tokens} golden tokens ({plain.analysis_tokens} analysis)")
    print(
        f"  evaluations {stats.evaluations} (token by token: {plain.stats.evaluations}); "
        f"tokens per evaluation {stats.tokens_per_evaluation:.2f}"
    )
    print(
        f"  accepted drafts: forced text {stats.forced_accepted}/{stats.forced_drafted}, "
        f"n-gram {stats.ngram_accepted}/{stats.ngram_drafted}"
    )
    if spec.grammar_lost is not None:
        print(
            f"  the golden text leaves the grammar at token {spec.grammar_lost}: "
            "no forced text after it"
        )
    # Decode cost only, from the batch-cost fit: evaluations plus the extra tokens they carried.
    projected = stats.tokens / (stats.evaluations + extra * (stats.evaluated - stats.evaluations))
    print(f"  projected from the batch costs (decode only): {projected:.2f}x")
    print(f"  {'phase':10} {'plain s':>8} {'spec s':>8} {'measured':>9}")
    for phase, p, s in (
        ("analysis", plain.analysis_s, spec.analysis_s),
        ("whole", plain.total_s, spec.total_s),
    ):
        print(f"  {phase:10} {p:8.3f} {s:8.3f} {p / s:8.2f}x")


@dataclass(frozen=True)
class Step:
    batch: int  # tokens evaluated: the last token plus the draft
    forced: int  # accepted draft tokens that were forced text
    ngram: int  # accepted draft tokens from the n-gram drafter
    analysis: bool  # the step writes analysis tokens (before "</think>\n")


def draft_potential(
    model: Model,
    golden: str,
    context: list[int],
    strict: StrictFormat | None,
    tokenizer: object | None,
    limit: int,
    use_ngram: bool = True,
) -> list[Step]:
    """Steps of a decoder that always drafts up to ``limit`` tokens, on the golden text.

    Counting only (no evaluation): at each step the forced text and the n-gram drafter propose,
    the golden text decides how many are accepted, and the step outputs those plus one.
    """
    tokens = model.tokenize(golden)
    think_end = len(model.tokenize(golden[: golden.index(THINK_END) + len(THINK_END)]))
    ngram = NgramDrafter(context)
    forced = ForcedText(tokenizer) if strict is not None and tokenizer is not None else None
    if forced is not None:
        forced.set_grammar(strict.think_grammar())

    def commit(token: int, position: int) -> None:
        ngram.extend((token,))
        if forced is not None:
            forced.consume(token)
            if position + 1 == think_end:
                think = model.llm.detokenize(tokens[:think_end]).decode(errors="replace")
                forced.set_grammar(strict.story_grammar(think, 10 * len(tokens)))

    commit(tokens[0], 0)  # drawn from the prompt's logits, as in a plain run
    position = 1
    steps = []
    while position < len(tokens):
        room = min(limit, len(tokens) - position - 1)
        proposal = forced.forced()[:room] if forced is not None else []
        extra = ngram.draft(proposal, room - len(proposal)) if use_ngram else []
        if extra and forced is not None:
            extra = extra[: forced.allowed_prefix(proposal + extra) - len(proposal)]
        draft = proposal + extra
        matched = 0
        while matched < len(draft) and draft[matched] == tokens[position + matched]:
            matched += 1
        forced_ok = min(matched, len(proposal))
        steps.append(Step(len(draft) + 1, forced_ok, matched - forced_ok, position < think_end))
        for offset in range(matched + 1):
            commit(tokens[position + offset], position + offset)
        position += matched + 1
    return steps


def interpolated(costs: list[BatchCost], n_tokens: int) -> float:
    """Relative cost of a batch of n tokens, piecewise linear between the measured sizes."""
    single = costs[0].seconds
    points = [(row.n_tokens, row.seconds / single) for row in costs]
    for (n0, c0), (n1, c1) in itertools.pairwise(points):
        if n_tokens <= n1:
            return c0 + (c1 - c0) * (n_tokens - n0) / (n1 - n0)
    return points[-1][1] * n_tokens / points[-1][0]


def print_potential(
    name: str,
    model: Model,
    golden: str,
    strict: StrictFormat | None,
    tokenizer: object | None,
    costs: list[BatchCost],
) -> None:
    context, _ = model.prompt(16)
    print(f"\n{name}: drafting always (up to K tokens), counted on the golden text")
    print(
        f"  {'K':>20} {'analysis tok/eval':>18} {'projected':>10} {'whole tok/eval':>15} "
        f"{'projected':>10} {'forced':>7} {'n-gram':>7}"
    )
    choices = [(str(limit), limit, True) for limit in (1, 2, 4, 8, 16, 32)]
    if strict is not None:
        choices.append(("forced text only, 32", 32, False))
    for label, limit, use_ngram in choices:
        steps = draft_potential(model, golden, context, strict, tokenizer, limit, use_ngram)
        row = []
        for chosen in ([s for s in steps if s.analysis], steps):
            tokens = sum(s.forced + s.ngram + 1 for s in chosen)
            cost = sum(interpolated(costs, s.batch) for s in chosen)
            row += [tokens / len(chosen), tokens / cost]
        forced = sum(s.forced for s in steps)
        ngram = sum(s.ngram for s in steps)
        print(
            f"  {label:>20} {row[0]:18.2f} {row[1]:9.2f}x {row[2]:15.2f} {row[3]:9.2f}x "
            f"{forced:7d} {ngram:7d}"
        )


def models(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, Path]]:
    yield "tiny (F16)", tiny_model(workdir / "tiny")
    if not args.no_synthetic:
        yield "334M synthetic (Q4_K_M)", synthetic_model(workdir / "synthetic")
    for path in args.model or []:
        yield path.name, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", help="another text GGUF")
    parser.add_argument("--workdir", type=Path, help="keeps the converted models between runs")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the 334M model")
    parser.add_argument("--golden", type=Path, default=GOLDEN)
    parser.add_argument("--strict", action="store_true", help="forced text from the grammar")
    parser.add_argument("--kv", type=int, default=1200, help="prompt cells before writing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-replay", action="store_true", help="batch costs and counts only")
    args = parser.parse_args(argv)

    from desktop_app.engine.device import physical_cores

    threads = args.threads or physical_cores()
    golden = args.golden.read_text(encoding="utf-8")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="storyteller-decode-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{threads} threads; KV before writing: {args.kv} cells; golden: {args.golden.name}")
    for name, path in models(args, workdir):
        model = Model(path, threads)
        try:
            costs = batch_costs(model, args.kv, args.repeat)
            extra = print_costs(name, costs)
            strict = None
            if args.strict:
                # One 560x560 photo per analysed frame; a budget large enough for the loosest
                # caps, so that the golden cells fit them.
                frames = golden.split(THINK_END)[0].count("## Image ")
                strict = StrictFormat([(560, 560)] * frames, max(8192, 4 * len(golden)))
            tokenizer = llguidance_tokenizer(model.vocab) if args.strict else None
            print_potential(name, model, golden, strict, tokenizer, costs)
            if args.no_replay:
                continue
            common = {"strict": strict, "tokenizer": tokenizer, "timer": DecodeTimer()}
            runs: dict[bool, list[Replay]] = {False: [], True: []}
            for _ in range(args.repeat):  # interleaved: load changes hit both alike
                for speculate in (False, True):
                    runs[speculate].append(
                        replay(model, golden, args.kv, speculate=speculate, **common)
                    )
            plain, spec = best(runs[False]), best(runs[True])
            print_replay(name, plain, spec, extra)
            measured = ", ".join(f"{n:.0f}: {c:.2f}" for n, c in common["timer"].cost.points)
            print(f"  batch costs the decoder measured while writing (n: cost): {measured or '-'}")
        finally:
            model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
