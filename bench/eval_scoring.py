"""Benchmark: how long `storyteller eval` takes to score a run, by stage.

Makes N synthetic story pairs shaped like the StoryReasoning test split (5 frames of 575x240,
3 characters and 5 objects per frame, about 350 story words) and times parsing, the grounding
metrics and the text metrics. Needs the eval extra.

    .venv/bin/python bench/eval_scoring.py            # 100 and 626 stories (the test split)
    .venv/bin/python bench/eval_scoring.py --stories 50
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(1, str(REPO_ROOT / "tests" / "evaluation"))

from eval_helpers import output  # noqa: E402

from desktop_app.evaluation.metrics import (  # noqa: E402
    grounding_boxes,
    score_grounding,
    score_text,
    story_text,
)
from desktop_app.story.parser import parse_story  # noqa: E402

FRAME = (575, 240)
_VOCABULARY = (
    "the a man woman boy girl dog car street house door window looks walks runs holds smiles "
    "turns at to in on with from behind towards quietly slowly suddenly bright dark old young"
)
WORDS = _VOCABULARY.split()


def _box(rng: random.Random) -> str:
    x1, y1 = rng.randint(0, 300), rng.randint(0, 120)
    return f"{x1},{y1},{rng.randint(x1 + 20, 575)},{rng.randint(y1 + 20, 240)}"


def synthetic_output(rng: random.Random) -> str:
    frames = []
    for _ in range(5):
        characters = [_box(rng) for _ in range(3)]
        objects = [(rng.choice(["Car door", "Street lamp", "Person walking"]), _box(rng))]
        frames.append((characters, objects * 5))
    return output(frames, " ".join(rng.choice(WORDS) for _ in range(70)) + ".")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, nargs="*", default=[100, 626])
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"{'stories':>8s} {'parse s':>8s} {'grounding s':>12s} {'text s':>8s} {'total s':>8s}")
    for count in args.stories:
        texts = [(synthetic_output(rng), synthetic_output(rng)) for _ in range(count)]
        start = time.perf_counter()
        stories = [(parse_story(c), parse_story(r)) for c, r in texts]
        parsed = time.perf_counter()
        sizes = [FRAME] * 5
        for c, r in stories:
            score_grounding(grounding_boxes(c, sizes), grounding_boxes(r, sizes))
        grounded = time.perf_counter()
        score_text([story_text(c) for c, _ in stories], [story_text(r) for _, r in stories])
        done = time.perf_counter()
        print(
            f"{count:8d} {parsed - start:8.2f} {grounded - parsed:12.2f} {done - grounded:8.2f}"
            f" {done - start:8.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
