"""Write a synthetic Qwen2.5-VL checkpoint of random bf16 weights with chosen shapes (numpy only).

The benchmarks convert and run these instead of downloaded weights: the time and memory a model
costs depend on its shapes, not on what its weights learned. ``QWEN25VL_7B`` has the real shapes
of Qwen2.5-VL-7B (and so of QwenStoryteller): a 16.6 GB checkpoint. Tensors are streamed to disk
one chunk at a time, so writing it needs well under 1 GB of memory; the tokenizer is the tiny
fixture's (its 640 tokens; the converter pads the vocabulary to the embedding rows with
``[PADi]``), so any token id the prompt uses exists.

    python bench/qwen25vl_checkpoint.py /work/scratch-7b/checkpoint          # the 7B shapes
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TINY = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint"
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "generation_config.json",
)
_CHUNK_ELEMENTS = 16 * 2**20  # 32 MB of bf16 per write: memory stays flat for any tensor
_BF16_ONE = 0x3F80


@dataclass(frozen=True)
class Shapes:
    """The dimensions that decide a Qwen2.5-VL checkpoint's tensors."""

    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    vision_hidden: int
    vision_ffn: int
    vision_depth: int
    vision_heads: int
    fullatt_blocks: tuple[int, ...]
    mrope_section: tuple[int, int, int]
    max_positions: int = 128000


QWEN25VL_7B = Shapes(
    hidden=3584,
    ffn=18944,
    layers=28,
    heads=28,
    kv_heads=4,
    vocab=152064,
    vision_hidden=1280,
    vision_ffn=3420,
    vision_depth=32,
    vision_heads=16,
    fullatt_blocks=(7, 15, 23, 31),
    mrope_section=(16, 24, 24),
)


def tensor_shapes(s: Shapes) -> dict[str, tuple[int, ...]]:
    """Every tensor of the checkpoint (legacy hub names) with its shape."""
    kv = s.hidden // s.heads * s.kv_heads
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (s.vocab, s.hidden),
        "lm_head.weight": (s.vocab, s.hidden),
        "model.norm.weight": (s.hidden,),
    }
    for i in range(s.layers):
        p = f"model.layers.{i}."
        shapes |= {
            p + "input_layernorm.weight": (s.hidden,),
            p + "post_attention_layernorm.weight": (s.hidden,),
            p + "self_attn.q_proj.weight": (s.hidden, s.hidden),
            p + "self_attn.q_proj.bias": (s.hidden,),
            p + "self_attn.k_proj.weight": (kv, s.hidden),
            p + "self_attn.k_proj.bias": (kv,),
            p + "self_attn.v_proj.weight": (kv, s.hidden),
            p + "self_attn.v_proj.bias": (kv,),
            p + "self_attn.o_proj.weight": (s.hidden, s.hidden),
            p + "mlp.gate_proj.weight": (s.ffn, s.hidden),
            p + "mlp.up_proj.weight": (s.ffn, s.hidden),
            p + "mlp.down_proj.weight": (s.hidden, s.ffn),
        }
    vh, vi, merged = s.vision_hidden, s.vision_ffn, 4 * s.vision_hidden  # 2x2 patches merged
    shapes |= {
        "visual.patch_embed.proj.weight": (vh, 3, 2, 14, 14),
        "visual.merger.ln_q.weight": (vh,),
        "visual.merger.mlp.0.weight": (merged, merged),
        "visual.merger.mlp.0.bias": (merged,),
        "visual.merger.mlp.2.weight": (s.hidden, merged),
        "visual.merger.mlp.2.bias": (s.hidden,),
    }
    for i in range(s.vision_depth):
        p = f"visual.blocks.{i}."
        shapes |= {
            p + "norm1.weight": (vh,),
            p + "norm2.weight": (vh,),
            p + "attn.qkv.weight": (3 * vh, vh),
            p + "attn.qkv.bias": (3 * vh,),
            p + "attn.proj.weight": (vh, vh),
            p + "attn.proj.bias": (vh,),
            p + "mlp.gate_proj.weight": (vi, vh),
            p + "mlp.gate_proj.bias": (vi,),
            p + "mlp.up_proj.weight": (vi, vh),
            p + "mlp.up_proj.bias": (vi,),
            p + "mlp.down_proj.weight": (vh, vi),
            p + "mlp.down_proj.bias": (vh,),
        }
    return shapes


def config(s: Shapes) -> dict:
    """config.json in the flat hub layout: the tiny fixture's token ids, ``s``'s dimensions."""
    result = json.loads((TINY / "config.json").read_text())
    result |= {
        "hidden_size": s.hidden,
        "intermediate_size": s.ffn,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "vocab_size": s.vocab,
        "max_window_layers": s.layers,
        "max_position_embeddings": s.max_positions,
        "rope_scaling": {"type": "mrope", "mrope_section": list(s.mrope_section)},
    }
    result["vision_config"] |= {
        "hidden_size": s.vision_hidden,
        "intermediate_size": s.vision_ffn,
        "num_heads": s.vision_heads,
        "depth": s.vision_depth,
        "fullatt_block_indexes": list(s.fullatt_blocks),
        "out_hidden_size": s.hidden,
    }
    return result


def _shard_plan(shapes: dict[str, tuple[int, ...]], shard_bytes: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for name in sorted(shapes):
        nbytes = 2 * int(np.prod(shapes[name]))
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def _chunks(name: str, count: int, pool: np.ndarray, rng: np.random.Generator) -> Iterator[bytes]:
    """``count`` bf16 values for ``name``: ones for norm weights, else slices of a random pool."""
    if name.endswith("norm.weight") or "norm1" in name or "norm2" in name or "ln_q" in name:
        ones = np.full(min(count, _CHUNK_ELEMENTS), _BF16_ONE, dtype="<u2")
        for start in range(0, count, _CHUNK_ELEMENTS):
            yield ones[: min(_CHUNK_ELEMENTS, count - start)].tobytes()
        return
    for start in range(0, count, _CHUNK_ELEMENTS):
        n = min(_CHUNK_ELEMENTS, count - start)
        # A random window of the pool per chunk: random values without drawing 8 billion of them.
        offset = int(rng.integers(0, len(pool) - n + 1))
        yield pool[offset : offset + n].tobytes()


def write_checkpoint(
    folder: Path, s: Shapes, *, shard_bytes: int = 4 * 10**9, seed: int = 0
) -> int:
    """Write the checkpoint to ``folder`` (resumable: complete shards are kept); its weight bytes.

    The index is written last, so a folder with an index is complete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shapes = tensor_shapes(s)
    shards = _shard_plan(shapes, shard_bytes)
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(2 * _CHUNK_ELEMENTS, dtype=np.float32) * np.float32(0.02)
    pool = (values.view(np.uint32) >> 16).astype("<u2")  # bf16 = the top half of an f32
    weight_map: dict[str, str] = {}
    total = 0
    for n, names in enumerate(shards, start=1):
        file_name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name in names:
            nbytes = 2 * int(np.prod(shapes[name]))
            header[name] = {
                "dtype": "BF16",
                "shape": list(shapes[name]),
                "data_offsets": [offset, offset + nbytes],
            }
            offset += nbytes
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned, as safetensors does
        path = folder / file_name
        weight_map |= dict.fromkeys(names, file_name)
        total += offset
        if path.is_file() and path.stat().st_size == 8 + len(encoded) + offset:
            continue
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as out:
            out.write(struct.pack("<Q", len(encoded)) + encoded)
            for name in names:
                for chunk in _chunks(name, int(np.prod(shapes[name])), pool, rng):
                    out.write(chunk)
        partial.replace(path)
    (folder / "config.json").write_text(json.dumps(config(s), indent=2))
    for name in TOKENIZER_FILES:
        shutil.copy2(TINY / name, folder / name)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the checkpoint")
    args = parser.parse_args(argv)
    total = write_checkpoint(args.folder, QWEN25VL_7B)
    print(f"{total / 1e9:.2f} GB of bf16 weights in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
