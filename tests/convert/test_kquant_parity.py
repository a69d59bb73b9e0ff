"""Straight K-quants equal llama.cpp's quantizer run on a BF16 conversion, tensor by tensor.

For each checkpoint the same converter writes the text model twice: straight from the
safetensors (the default) and ``via_intermediate`` (a BF16 GGUF, then ``llama_model_quantize``).
Every tensor must have the same type and the same bytes; the files as a whole must be equal too
(same metadata order, tensor order and padding). Checkpoints: the tiny fixture (every K-quant),
a 28-layer one of small width (so Q4_K_M's per-layer Q6_K choice for attn_v / ffn_down is
compared), and one whose FFN is not a multiple of 256 (so llama.cpp's fallback types appear).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import gguf
import pytest
from gguf import GGMLQuantizationType as GGML

from convert import ProgressEvent, Stage, convert_checkpoint

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO_ROOT / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint"
sys.path.insert(0, str(REPO_ROOT / "bench"))
from qwen25vl_checkpoint import Shapes, write_checkpoint  # noqa: E402

# Small widths (the tiny fixture's tokenizer, 640 tokens); head size 64, M-RoPE 8+12+12 = 32.
SMALL = {
    "hidden": 256,
    "heads": 4,
    "kv_heads": 2,
    "vocab": 640,
    "vision_hidden": 64,
    "vision_ffn": 128,
    "vision_depth": 2,
    "vision_heads": 2,
    "fullatt_blocks": (1,),
    "mrope_section": (8, 12, 12),
    "max_positions": 8192,
}
DEEP = Shapes(ffn=512, layers=28, **SMALL)  # type: ignore[arg-type]
ODD_FFN = Shapes(ffn=544, layers=4, **SMALL)  # type: ignore[arg-type]  # 544 = 17 x 32


def tensors(path: Path) -> dict[str, tuple[GGML, bytes]]:
    reader = gguf.GGUFReader(path)
    return {t.name: (GGML(t.tensor_type), t.data.tobytes()) for t in reader.tensors}


def both_ways(src: Path, out: Path, quant: str) -> tuple[Path, Path]:
    straight = convert_checkpoint(src, out / "straight", quant=quant, name="m", threads=2)
    reference = convert_checkpoint(
        src, out / "llama", quant=quant, name="m", threads=2, via_intermediate=True
    )
    return straight.text_gguf, reference.text_gguf


def assert_same(straight: Path, reference: Path) -> dict[str, GGML]:
    ours, theirs = tensors(straight), tensors(reference)
    assert list(ours) == list(theirs)  # llama.cpp's tensor order
    differ = [n for n in theirs if ours[n] != theirs[n]]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}: " + ", ".join(
        f"{n} {ours[n][0].name}/{theirs[n][0].name}" for n in differ[:3]
    )
    assert straight.read_bytes() == reference.read_bytes()
    return {name: kind for name, (kind, _) in ours.items()}


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q5_K_M", "Q6_K"])
def test_tiny_fixture(tmp_path: Path, quant: str) -> None:
    types = assert_same(*both_ways(CHECKPOINT, tmp_path, quant))
    main = {"Q4_K_M": GGML.Q4_K, "Q5_K_M": GGML.Q5_K, "Q6_K": GGML.Q6_K}[quant]
    assert types["blk.0.attn_q.weight"] is main
    assert types["output.weight"] is GGML.Q6_K


def test_28_layers_keep_llama_cpps_per_layer_choices(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "deep", DEEP, shard_bytes=4 * 10**6)
    types = assert_same(*both_ways(tmp_path / "deep", tmp_path, "Q4_K_M"))
    down = [types[f"blk.{i}.ffn_down.weight"] for i in range(28)]
    value = [types[f"blk.{i}.attn_v.weight"] for i in range(28)]
    # Q4_K_M gives some layers more bits: both kinds occur, and not in every layer alike.
    assert {GGML.Q4_K, GGML.Q6_K} <= set(down) and {GGML.Q4_K, GGML.Q6_K} <= set(value)
    assert down[0] is GGML.Q6_K and down[27] is GGML.Q6_K


def test_an_ffn_that_is_not_a_multiple_of_256_gets_llama_cpps_fallbacks(tmp_path: Path) -> None:
    write_checkpoint(tmp_path / "odd", ODD_FFN)
    types = assert_same(*both_ways(tmp_path / "odd", tmp_path, "Q4_K_M"))
    kinds = set(types.values())
    assert GGML.Q4_K in kinds and GGML.Q6_K in kinds
    fallbacks = {types[f"blk.{i}.ffn_down.weight"] for i in range(4)}
    assert fallbacks & {GGML.Q5_0, GGML.Q8_0}, fallbacks  # Q4_K -> Q5_0, Q6_K -> Q8_0


class Cancelled(Exception):
    """What the GUI's progress callback raises on Cancel."""


def test_cancel_stops_the_real_quantizer_child_within_a_second_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    cancelled_at = 0.0

    def cancel(event: ProgressEvent) -> None:
        nonlocal cancelled_at
        if event.stage is Stage.TEXT:  # the child is writing the K-quant text model
            cancelled_at = time.monotonic()
            raise Cancelled

    with pytest.raises(Cancelled):
        convert_checkpoint(CHECKPOINT, tmp_path / "out", quant="Q4_K_M", progress=cancel)
    assert time.monotonic() - cancelled_at < 1.0
    assert list((tmp_path / "out").iterdir()) == []
