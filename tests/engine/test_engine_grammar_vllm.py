"""The strict format a vLLM server is sent (``structured_outputs.grammar``) holds in xgrammar,
vLLM's default structured-output backend, as it holds in llama.cpp.

vLLM itself is not run (it needs a GPU and gigabytes); its grammar path is: a grammar with a
``::=`` line is EBNF, validated with ``xgrammar.Grammar.from_ebnf``, compiled against the
model's tokenizer and matched token by token (vllm/v1/structured_output/backend_xgrammar.py).
tests/engine/xgrammar_probe.py takes those steps in the xgrammar environment of
tests/xgrammar_env.py, with the Qwen2.5 tokenizer of the tiny fixture.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from ci_tools import tool_missing
from test_engine_grammar_trained import SIZE, golden

from desktop_app.engine.grammar import StrictFormat
from desktop_app.story.trained_layout import CHARACTERS_OPEN, frame_heading

pytestmark = pytest.mark.slow

TOKENIZER = (
    Path(__file__).parents[1] / "fixtures" / "tiny-qwen25vl" / "checkpoint" / "tokenizer.json"
)
PROBE = Path(__file__).with_name("xgrammar_probe.py")


@pytest.fixture(scope="module")
def xgrammar_python() -> Path:
    """The xgrammar environment's python; under CI=true one that cannot be made fails."""
    from machine_cache import SetupError
    from xgrammar_env import ensure_xgrammar_python

    try:
        return ensure_xgrammar_python()
    except SetupError as err:
        tool_missing(f"the xgrammar environment could not be made: {err}", "CI runs this check")


def matched(python: Path, grammar: str, texts: list[str]) -> list[dict]:
    case = {"grammar": grammar, "tokenizer": str(TOKENIZER), "stop": "<|im_end|>", "texts": texts}
    done = subprocess.run(
        [str(python), str(PROBE)],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["results"]


def test_vllms_grammar_backend_takes_the_strict_format(xgrammar_python: Path) -> None:
    think, story = golden("trained_global_ids")
    grammar = StrictFormat([SIZE] * 3, 100_000).combined_grammar()
    start = "<think>\n" + frame_heading(1) + CHARACTERS_OPEN
    old_header = start.replace("|--------------|------|", "|---|---|")
    box = start + "| char2 | Ines | a | b | c | d | 40, 31, 193, 239 |"
    whole, analysis_only = think + story, think
    results = matched(xgrammar_python, grammar, [whole, analysis_only, old_header, box])
    accepted, unfinished, header, spaced_box = results
    # The trained layout is taken to its end, and the story may stop there...
    assert accepted["accepted"] == accepted["tokens"] > 1000 and accepted["may_stop"]
    # ...but not before its story.
    assert unfinished["accepted"] == unfinished["tokens"] and not unfinished["may_stop"]
    # What llama.cpp's grammar refuses, xgrammar refuses too: v1's separator row, and a box
    # with spaces (tests/engine/test_engine_grammar_trained.py).
    assert header["accepted_text"] == old_header[: old_header.index("|---|") + 1]
    assert spaced_box["accepted"] < spaced_box["tokens"]
    assert spaced_box["accepted_text"].startswith(box[: box.index(", 31")])
