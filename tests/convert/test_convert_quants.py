"""Every --quant and every --mmproj-type loads in llama.cpp and generates from an image prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as GGML
from llama_probe import run_probe

from convert import MmprojType, TextQuant, convert_checkpoint

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-qwen25vl"
# Each text type once, cycling the mmproj types so every one is loaded at least once.
PAIRS = [
    (quant.spec.label, list(MmprojType)[i % len(MmprojType)].spec.label)
    for i, quant in enumerate(TextQuant)
]
# The type the 2-D text matrices must carry (K-quant mixes: the base type of most of them).
MAIN_TYPE = {
    "F32": GGML.F32,
    "F16": GGML.F16,
    "BF16": GGML.BF16,
    "Q8_0": GGML.Q8_0,
    "Q6_K": GGML.Q6_K,
    "Q5_K_M": GGML.Q5_K,
    "Q4_K_M": GGML.Q4_K,
}
MMPROJ_MAIN_TYPE = {"f16": GGML.F16, "f32": GGML.F32, "bf16": GGML.BF16, "q8_0": GGML.Q8_0}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("quants")
    out: dict[str, Any] = {}
    jobs = []
    for quant, mmproj_type in PAIRS:
        result = convert_checkpoint(
            FIXTURE / "checkpoint",
            root / quant,
            lora=FIXTURE / "lora",
            quant=quant,
            mmproj_type=mmproj_type,
            name="tiny",
            threads=2,
        )
        out[quant] = result
        common = {
            "model": str(result.text_gguf),
            "mmproj": str(result.mmproj_gguf),
            "image": str(FIXTURE / "image.png"),
        }
        jobs.append({"kind": "generate", "max_tokens": 4, **common})
        jobs.append(
            {
                "kind": "image_logits",
                "before": "<|im_start|>user\n",
                "after": "Describe.<|im_end|>\n<|im_start|>assistant\n",
                **common,
            }
        )
    results = run_probe(jobs, root / "probe")
    for i, (quant, _) in enumerate(PAIRS):
        out[f"{quant}/generate"] = results[2 * i]
        out[f"{quant}/logits"] = results[2 * i + 1]["logits"]
    return out


@pytest.mark.parametrize(("quant", "mmproj_type"), PAIRS)
def test_quant_generates_from_an_image(quant: str, mmproj_type: str, converted: dict) -> None:
    result = converted[f"{quant}/generate"]
    assert int(result["completion_tokens"]) > 0
    assert result["text"].strip()


@pytest.mark.parametrize(("quant", "mmproj_type"), PAIRS)
def test_quant_tensor_types(quant: str, mmproj_type: str, converted: dict) -> None:
    result = converted[quant]
    text = gguf.GGUFReader(result.text_gguf)
    types = {t.name: t.tensor_type for t in text.tensors}
    assert types["blk.0.attn_q.weight"] == MAIN_TYPE[quant]
    assert all(types[n] == GGML.F32 for n in types if n.endswith((".bias", "_norm.weight")))
    mmproj = gguf.GGUFReader(result.mmproj_gguf)
    vision = {t.name: t.tensor_type for t in mmproj.tensors}
    assert vision["v.blk.0.attn_q.weight"] == MMPROJ_MAIN_TYPE[mmproj_type]
    assert vision["v.patch_embd.weight"] in (GGML.F16, GGML.F32)
    assert all(
        vision[n] == GGML.F32
        for n in vision
        if n.endswith((".bias", "ln1.weight", "post_ln.weight"))
    )


def test_close_types_agree_with_f32(converted: dict) -> None:
    """F16, BF16 and Q8_0 keep the image prompt's next token; the logits stay close to F32."""
    reference = converted["F32/logits"]
    for quant in ("F16", "BF16", "Q8_0"):
        logits = converted[f"{quant}/logits"]
        assert int(logits.argmax()) == int(reference.argmax()), quant
        assert float(np.abs(logits - reference).max() / np.abs(reference).max()) < 0.05, quant


def test_smaller_types_give_smaller_files(converted: dict) -> None:
    sizes = [
        converted[q].text_gguf.stat().st_size for q in ("F32", "F16", "Q8_0", "Q6_K", "Q4_K_M")
    ]
    assert sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) == len(sizes)
