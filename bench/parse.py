"""Benchmark: parsing a 20-frame QwenStoryteller output whole, and as a token-by-token stream.

usage: python bench/parse.py [--frames 20] [--repeat 20]

Generates a realistic output (analysis tables for every frame, narrative structure, a tagged
story; about 60 KB for 20 frames), then prints:
- the time to parse it whole (target: under 20 ms);
- the time to stream it token by token (about 3 characters per token, as a BPE tokenizer gives),
  calling ``snapshot()`` after every token as the GUI does, for growing prefixes of the output:
  total time grows in proportion to the length (linear), not with its square;
- the cost of one feed + snapshot at several positions of the stream: flat, whatever has come
  before.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app.story import StoryStreamParser, parse_story

NAMES = ["Nora", "Leo", "Amara", "Tomasz", "Yuki", "Ines", "Kofi", "Zoë"]
TRAITS = ["in a blue windbreaker", "with a red cap", "carrying a camera", "in a striped scarf"]
EMOTIONS = ["Cheerful", "Curious", "Anxious", "Determined", "Content", "Surprised"]
ACTIONS = ["points towards the sea", "lifts a stone", "wades into the water", "pours tea"]
THINGS = ["green bucket", "thermos flask", "paper kite", "old map", "wooden boat", "lantern"]
PLACES = ["wide sandy beach", "rock pools", "dunes with tall grass", "harbour wall", "pier"]
PHASES = ["Introduction", "Development", "Conflict", "Turning Point", "Conclusion"]
TOKEN_RE = re.compile(r" ?\w{1,5}| ?[^\w\s]|\s+")


def _box(rng: random.Random) -> str:
    x1, y1 = rng.randint(0, 300), rng.randint(0, 300)
    return f"{x1}, {y1}, {x1 + rng.randint(40, 250)}, {y1 + rng.randint(40, 250)}"


def generate_output(frames: int, seed: int = 7) -> str:
    """A plausible model output for ``frames`` photos (about 3 KB per frame)."""
    rng = random.Random(seed)
    lines = ["<think>"]
    for index in range(1, frames + 1):
        lines += [f"## Image {index}", "", "### Characters"]
        lines += [
            "| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |",
            "|--------------|------|-------------|----------|---------|-------------------|--------------|",
        ]
        for k in range(1, rng.randint(3, 4) + 1):
            lines.append(
                f"| char{k} | {NAMES[k % len(NAMES)]} | A person {rng.choice(TRAITS)}, standing "
                f"near the others and looking {rng.choice(EMOTIONS).lower()} | "
                f"{rng.choice(EMOTIONS)} | {rng.choice(ACTIONS).capitalize()} | "
                f"Carries the scene forward as seen in frame {index} | {_box(rng)} |"
            )
        lines += ["", "### Objects"]
        lines += [
            "| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |",
            "|-----------|-------------|----------|------------|-------------------|--------------|",
        ]
        for k in range(1, rng.randint(3, 4) + 1):
            lines.append(
                f"| obj{k} | A {rng.choice(THINGS)} lying in plain view | Tool | "
                f"Used by char{rng.randint(1, 3)} | Links this frame to the next | {_box(rng)} |"
            )
        lines.append(
            f"| bg1 | {rng.choice(PLACES).capitalize()} | Ground | Everyone stands on it | "
            f"Stage of the scene | 0, 300, 560, 560 |"
        )
        lines += ["", "### Setting"]
        lines += [
            "| Setting Element | Description | Mood | Time | Narrative Function |",
            "|-----------------|-------------|------|------|-------------------|",
            "| Location | A northern coast with a long beach | Open | Morning | Sets the place |",
            "| Weather | Overcast with a light breeze | Fresh | Morning | Suggests change |",
            "",
        ]
    lines += ["## Narrative Structure", "| Narrative Phase | Description | Key Events | Images |"]
    lines.append("|---|---|---|---|")
    per_phase = max(1, frames // len(PHASES))
    for p, phase in enumerate(PHASES):
        images = ", ".join(
            str(i) for i in range(p * per_phase + 1, min(frames, (p + 1) * per_phase) + 1)
        )
        lines.append(f"| {phase} | The family's day moves on | Something happens | {images} |")
    lines.append("</think>")
    for index in range(1, frames + 1):
        sentences = []
        for _ in range(5):
            a, b = rng.randint(1, 3), rng.randint(1, 3)
            sentences.append(
                f"<gdo char{a}>{NAMES[a]}</gdo> <gda char{a}>{rng.choice(ACTIONS)}</gda> while "
                f"<gdo char{b}>{NAMES[b]}</gdo> watched <gdo obj{rng.randint(1, 3)}>the "
                f"{rng.choice(THINGS)}</gdo> on <gdl bg1>the {rng.choice(PLACES)}</gdl>, and "
                f"nobody said a word for a while."
            )
        lines += [f"<gdi image{index}>", " ".join(sentences), "</gdi>"]
    return "\n".join(lines) + "\n"


def tokens_of(text: str) -> list[str]:
    """Split like a BPE tokenizer roughly would (3-4 characters per token)."""
    return TOKEN_RE.findall(text)


def _best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _stream(tokens: list[str]) -> float:
    parser = StoryStreamParser()
    start = time.perf_counter()
    for token in tokens:
        parser.feed(token)
        parser.snapshot()
    return time.perf_counter() - start


def _step_cost(tokens: list[str], at: int, window: int = 400) -> float:
    """Median seconds of one feed + snapshot for the ``window`` tokens after position ``at``."""
    parser = StoryStreamParser()
    parser.feed("".join(tokens[:at]))
    parser.snapshot()
    costs = []
    for token in tokens[at : at + window]:
        start = time.perf_counter()
        parser.feed(token)
        parser.snapshot()
        costs.append(time.perf_counter() - start)
    return statistics.median(costs) if costs else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument(
        "--repeat", type=int, default=20, help="runs of the whole parse (best kept)"
    )
    args = parser.parse_args(argv)

    text = generate_output(args.frames)
    tokens = tokens_of(text)
    story = parse_story(text)
    assert len(story.frames) == args.frames and len(story.segments) == args.frames
    whole = _best_of(args.repeat, lambda: parse_story(text))

    print(f"output: {len(text) / 1000:.1f} KB, {args.frames} frames, {len(tokens)} tokens")
    print()
    print("| measurement                        | time      | target     |")
    print("|------------------------------------|-----------|------------|")
    verdict = "ok" if whole < 0.020 else "TOO SLOW"
    print(f"| whole parse                        | {whole * 1000:6.2f} ms | < 20 ms {verdict:>3} |")
    print()
    print("Streaming token by token, snapshot() after every token:")
    print()
    print("| prefix  | tokens | total     | per token | total / tokens vs first row |")
    print("|---------|--------|-----------|-----------|-----------------------------|")
    first_rate = None
    for fraction in (0.125, 0.25, 0.5, 1.0):
        count = int(len(tokens) * fraction)
        total = min(_stream(tokens[:count]) for _ in range(3))
        rate = total / count
        first_rate = first_rate or rate
        print(
            f"| {fraction * 100:5.1f} % | {count:6d} | {total * 1000:6.1f} ms | "
            f"{rate * 1e6:6.2f} µs | {rate / first_rate:27.2f} |"
        )
    print()
    print("Cost of one feed + snapshot at a position of the stream (median of 400 tokens):")
    print()
    print("| after characters | per token |")
    print("|------------------|-----------|")
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9):
        at = int(len(tokens) * fraction)
        chars = len("".join(tokens[:at]))
        print(f"| {chars:16d} | {_step_cost(tokens, at) * 1e6:6.2f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
