"""Strict format: grammar size and llama.cpp compile time for an album, at every rung of caps.

For N photos (default 20) this prints, per rung of the analysis caps (cell length, rows per
table), the analysis grammar's size and how long ``llama_sampler_init_grammar`` takes to parse it,
the smallest ``--max-tokens`` that rung needs, and the same for the story grammar when every frame
defined K ids (the story grammar is compiled once, when ``</think>`` is written; two ids in a tag
must differ, so it grows with K squared). Each strict run compiles each grammar twice (the check
sampler and the constrained chain).

Usage: ``python bench/grammar.py [--photos N] [--size WxH] [--model TEXT.gguf] [--repeat R]``.
Without a model it converts the tiny test checkpoint and uses its vocabulary (compile time does
not depend on the vocabulary's size: tokens are matched when sampling, not when compiling).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from desktop_app.engine.grammar import (  # noqa: E402
    STORY_LADDER,
    THINK_LADDER,
    StrictFormat,
)


def compile_ms(vocab: int, grammar: str, repeat: int) -> float:
    """Median milliseconds llama.cpp takes to parse ``grammar`` into a sampler."""
    import llama_cpp

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        times.append((time.perf_counter() - started) * 1000)
        if not sampler:
            raise SystemExit("llama.cpp rejected the grammar")
        llama_cpp.llama_sampler_free(sampler)
    return statistics.median(times)


def fake_analysis(n: int, ids_per_frame: int) -> str:
    """An analysis whose frames each define ``ids_per_frame`` ids (a third of them characters)."""
    frames = []
    for k in range(1, n + 1):
        rows = []
        for i in range(ids_per_frame):
            kind = ("char", "obj", "bg", "lm")[i % 4] if i % 3 else "char"
            rows.append(f"| {kind}{k * 50 + i} | x |\n")
        frames.append(f"## Image {k}\n\n" + "".join(rows))
    return "<think>\n" + "".join(frames) + "## Narrative Structure\n\n</think>\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--size", default="448x336", help="prepared size of every photo")
    parser.add_argument("--model", type=Path, help="a text GGUF whose vocabulary to use")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import llama_cpp

    width, height = (int(v) for v in args.size.lower().split("x"))
    sizes = [(width, height)] * args.photos
    with tempfile.TemporaryDirectory(prefix="storyteller-grammar-") as scratch:
        model_path = args.model
        if model_path is None:
            from convert import convert_checkpoint

            model_path = convert_checkpoint(
                REPO / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint",
                Path(scratch),
                quant="F16",
                name="tiny",
            ).text_gguf
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
        vocab = llama_cpp.llama_model_get_vocab(model)

        print(f"{args.photos} photos of {width}x{height}; vocabulary of {model_path.name}")
        print(
            f"{'analysis caps (cell, chars, objects, settings, phases)':54} "
            f"{'needs tokens':>12} {'grammar KB':>10} {'rules':>6} {'compile ms':>10}"
        )
        roomy = StrictFormat(sizes, 10**7)
        for caps in THINK_LADDER:
            grammar = roomy.think_grammar(caps)
            needed = roomy.think_worst_length(caps) + roomy.story_worst_length(
                [[]] * args.photos, STORY_LADDER[-1]
            )
            label = (
                f"{caps.cell}, {caps.characters}, {caps.objects}, {caps.settings}, {caps.phases}"
            )
            print(
                f"{label:54} {needed:12d} {len(grammar) / 1024:10.1f} "
                f"{grammar.count('::='):6d} {compile_ms(vocab, grammar, args.repeat):10.2f}"
            )
        print(
            f"\n{'story grammar, ids defined per frame':54} {'grammar KB':>10} {'compile ms':>10}"
        )
        for ids in (3, 8, 15, 25):
            grammar = roomy.story_grammar(fake_analysis(args.photos, ids), 10**7)
            print(
                f"{ids:54d} {len(grammar) / 1024:10.1f} {compile_ms(vocab, grammar, args.repeat):10.2f}"
            )
        llama_cpp.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
