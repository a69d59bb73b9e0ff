"""The prompt as trained, and what a run costs before it starts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from desktop_app.engine.api import Detail
from desktop_app.engine.costs import (
    QWEN25VL_7B,
    check_fits,
    context_tokens,
    estimate_run,
    round_context,
    run_memory_bytes,
)
from desktop_app.engine.model_files import load_catalog
from desktop_app.engine.prompt import (
    MEDIA_MARKER,
    SYSTEM_PROMPT,
    build_prompt,
    chat_messages,
    render_chatml,
)
from desktop_app.errors import StorytellerError

# docs/model-contract.md section 2, verbatim: the model was trained with exactly this system prompt.
TRAINED_SYSTEM_PROMPT = (
    "You are an AI storyteller that can analyze sequences of images and create creative "
    "narratives. First think step-by-step to analyze characters, objects, settings, and narrative "
    "structure. Then create a grounded story that maintains consistent character identity and "
    "object references across frames. Use <think></think> tags to show your reasoning process "
    "before writing the final story."
)


def test_system_prompt_is_verbatim() -> None:
    assert SYSTEM_PROMPT == TRAINED_SYSTEM_PROMPT


def test_chatml_puts_the_instruction_before_the_photos_in_order() -> None:
    text = render_chatml("Create a story based on these images.", 3)
    assert text == (
        f"<|im_start|>system\n{TRAINED_SYSTEM_PROMPT}<|im_end|>\n"
        "<|im_start|>user\nCreate a story based on these images."
        f"{MEDIA_MARKER}{MEDIA_MARKER}{MEDIA_MARKER}<|im_end|>\n<|im_start|>assistant\n"
    )
    # mtmd adds <|vision_start|>/<|vision_end|> around each marker itself.
    assert "<|vision_start|>" not in text


def test_the_instructions_are_the_ten_the_training_drew_from() -> None:
    from desktop_app.engine.prompt import DEFAULT_INSTRUCTION, TRAINED_INSTRUCTIONS

    # docs/model-contract.md section 2: the training adapter's list, "" (no instruction) among them.
    assert len(TRAINED_INSTRUCTIONS) == 10 and "" in TRAINED_INSTRUCTIONS
    assert "These images form a sequence - please tell the story they represent." in (
        TRAINED_INSTRUCTIONS
    )
    assert DEFAULT_INSTRUCTION == "Create a story based on these images."
    for instruction in TRAINED_INSTRUCTIONS:
        text = render_chatml(instruction, 2)
        assert f"<|im_start|>user\n{instruction}{MEDIA_MARKER}{MEDIA_MARKER}<|im_end|>" in text


def test_the_models_own_template_renders_the_same_prompt(tiny_checkpoint: Path) -> None:
    config = json.loads((tiny_checkpoint / "tokenizer_config.json").read_text())
    template = config["chat_template"]
    for instruction, photos in [("Create a story based on these images.", 5), ("", 1)]:
        assert build_prompt(instruction, photos, chat_template=template) == render_chatml(
            instruction, photos
        )


def test_a_broken_template_falls_back_to_chatml() -> None:
    assert build_prompt("Go.", 2, chat_template="{{ raise_exception('no') }}") == render_chatml(
        "Go.", 2
    )


def test_chat_messages_for_servers_keep_album_order() -> None:
    parts = [{"type": "image_url", "image_url": {"url": f"data:{i}"}} for i in range(3)]
    messages = chat_messages("Tell it.", parts)
    assert messages[0] == {"role": "system", "content": TRAINED_SYSTEM_PROMPT}
    assert messages[1]["content"][0] == {"type": "text", "text": "Tell it."}
    assert [p["image_url"]["url"] for p in messages[1]["content"][1:]] == [
        "data:0",
        "data:1",
        "data:2",
    ]


def test_context_counts_kv_cells_not_positions() -> None:
    # Five 1024x768 photos at full detail: 999 tokens + 2 markers each (docs/model-contract.md 5.2-5.3).
    assert context_tokens(300, [999] * 5, 1024) == 300 + 5 * 1001 + 1024
    assert round_context(6329) == 6400


def test_estimate_grows_with_detail_and_photos() -> None:
    low = estimate_run([(4032, 3024)] * 5, Detail.LOW, 4096)
    high = estimate_run([(4032, 3024)] * 5, Detail.HIGH, 4096)
    assert low.tokens < high.tokens and low.memory_bytes < high.memory_bytes
    assert all(t <= 256 for t in low.image_tokens)
    assert high.n_ctx >= high.tokens and high.n_ctx % 256 == 0
    # Weights dominate: a default run of the 7B needs more than its files.
    assert low.memory_bytes > QWEN25VL_7B.weights_bytes


def test_runs_that_do_not_fit_fail_clearly_before_any_work() -> None:
    with pytest.raises(StorytellerError, match="needs 9000 tokens of context but the model holds"):
        check_fits(9000, n_ctx=9216, context_length=8192, memory_bytes=1, physical_bytes=None)
    with pytest.raises(StorytellerError, match="GiB of memory"):
        check_fits(100, n_ctx=256, context_length=8192, memory_bytes=2**35, physical_bytes=2**33)
    check_fits(100, n_ctx=256, context_length=8192, memory_bytes=2**30, physical_bytes=2**33)


# Peak resident memory measured by bench/real_scale.py on the 7B shape (Q4_K_M text 4,680,529,184
# bytes + F16 mmproj 1,354,162,816 bytes, CPU, model read into memory, n_ctx 4096), 2026-12-02.
MEASURED_7B_PEAKS = [
    # (largest photo tokens, prompt cells saved, peak RSS bytes)
    (972, 0, 6_766_608_384),  # load, then photos of 234, 494 and 972 tokens encoded
    (234, 1362, 6_781_366_272),  # 5 photos at low detail, prompt read, 256 tokens written
]


@pytest.mark.parametrize(("largest", "cells", "peak"), MEASURED_7B_PEAKS)
def test_the_memory_estimate_is_within_15_percent_of_measured_7b_peaks(
    largest: int, cells: int, peak: int
) -> None:
    shape = dataclasses.replace(QWEN25VL_7B, weights_bytes=4_680_529_184 + 1_354_162_816)
    estimate = run_memory_bytes(shape, 4096, largest, cells)
    assert abs(estimate / peak - 1) <= 0.15


def test_the_catalog_ram_figures_are_the_estimate_for_an_8k_context() -> None:
    catalog = load_catalog()
    assert catalog
    for entry in catalog:
        shape = dataclasses.replace(
            QWEN25VL_7B, weights_bytes=entry.size_bytes + entry.mmproj_size_bytes
        )
        assert entry.ram_bytes == pytest.approx(run_memory_bytes(shape, 8192, 972, 4096), rel=0.01)
