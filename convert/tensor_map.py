"""Hugging Face tensor names -> GGUF tensor names, as a data table.

Facts from docs/llamacpp.md sections 1 (text tensors) and 2 (mmproj tensors). Each row also
gives the tensor's shape as named dimensions of the normalised config, so a checkpoint whose
weights disagree with its config.json is refused from the safetensors headers alone, before
llama.cpp would reject (or clip.cpp abort on) the written files. Weights are
written unchanged (no transposes, no q/k permutation) except for two vision reshapes: the fused
``attn.qkv`` is split into q/k/v row blocks, and the Conv3d patch kernel is split along time into
two Conv2d kernels.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from convert.config import ModelConfig
from convert.errors import ShapeMismatchError, UnknownTensorError

# Checkpoint name prefixes, rewritten to the hub's legacy layout before matching. transformers
# 4.52-4.57 save ``model.language_model.*`` / ``model.visual.*``; the hub files use the legacy one.
NAME_PREFIX_REWRITES: tuple[tuple[str, str], ...] = (
    ("model.language_model.", "model."),
    ("model.visual.", "visual."),
    ("language_model.model.", "model."),
    ("language_model.lm_head.", "lm_head."),
)


class Part(enum.Enum):
    """Which output file a tensor goes to."""

    TEXT = "text"
    MMPROJ = "mmproj"


class Transform(enum.Enum):
    """How one checkpoint tensor becomes one or more GGUF tensors."""

    COPY = "copy"
    SPLIT_ROWS_3 = "split_rows_3"  # fused qkv: rows are q, then k, then v
    SPLIT_TIME = "split_time"  # Conv3d [out, in, t=2, p, p] -> two [out, in, p, p] kernels


@dataclass(frozen=True)
class TensorRule:
    """One row of the table: a full-match pattern, the GGUF name template(s) it maps to, and
    the checkpoint shape as dimension names (keys of ``config_dimensions``). The shape is the
    weight's; a ``bias`` matched by the same row has the weight's first dimension."""

    part: Part
    pattern: str
    targets: tuple[str, ...]
    shape: tuple[str, ...]
    transform: Transform = Transform.COPY


def _rule(
    part: Part,
    pattern: str,
    *targets: str,
    shape: tuple[str, ...],
    transform: Transform = Transform.COPY,
) -> TensorRule:
    return TensorRule(part, pattern, targets, shape, transform)


_T, _V = Part.TEXT, Part.MMPROJ
_BLK = r"model\.layers\.(?P<bid>\d+)\."
_VBLK = r"visual\.blocks\.(?P<bid>\d+)\."

TENSOR_RULES: tuple[TensorRule, ...] = (
    _rule(_T, r"model\.embed_tokens\.weight", "token_embd.weight", shape=("vocab", "hidden")),
    _rule(_T, r"model\.norm\.weight", "output_norm.weight", shape=("hidden",)),
    _rule(_T, r"lm_head\.weight", "output.weight", shape=("vocab", "hidden")),
    _rule(_T, _BLK + r"input_layernorm\.weight", "blk.{bid}.attn_norm.weight", shape=("hidden",)),
    _rule(
        _T,
        _BLK + r"self_attn\.q_proj\.(?P<kind>weight|bias)",
        "blk.{bid}.attn_q.{kind}",
        shape=("q_rows", "hidden"),
    ),
    _rule(
        _T,
        _BLK + r"self_attn\.k_proj\.(?P<kind>weight|bias)",
        "blk.{bid}.attn_k.{kind}",
        shape=("kv_rows", "hidden"),
    ),
    _rule(
        _T,
        _BLK + r"self_attn\.v_proj\.(?P<kind>weight|bias)",
        "blk.{bid}.attn_v.{kind}",
        shape=("kv_rows", "hidden"),
    ),
    _rule(
        _T,
        _BLK + r"self_attn\.o_proj\.weight",
        "blk.{bid}.attn_output.weight",
        shape=("hidden", "q_rows"),
    ),
    _rule(
        _T,
        _BLK + r"post_attention_layernorm\.weight",
        "blk.{bid}.ffn_norm.weight",
        shape=("hidden",),
    ),
    _rule(
        _T, _BLK + r"mlp\.gate_proj\.weight", "blk.{bid}.ffn_gate.weight", shape=("ffn", "hidden")
    ),
    _rule(_T, _BLK + r"mlp\.up_proj\.weight", "blk.{bid}.ffn_up.weight", shape=("ffn", "hidden")),
    _rule(
        _T, _BLK + r"mlp\.down_proj\.weight", "blk.{bid}.ffn_down.weight", shape=("hidden", "ffn")
    ),
    _rule(
        _V,
        r"visual\.patch_embed\.proj\.weight",
        "v.patch_embd.weight",
        "v.patch_embd.weight.1",
        shape=("v_hidden", "channels", "time", "patch", "patch"),
        transform=Transform.SPLIT_TIME,
    ),
    _rule(_V, _VBLK + r"norm1\.weight", "v.blk.{bid}.ln1.weight", shape=("v_hidden",)),
    _rule(_V, _VBLK + r"norm2\.weight", "v.blk.{bid}.ln2.weight", shape=("v_hidden",)),
    _rule(
        _V,
        _VBLK + r"attn\.qkv\.(?P<kind>weight|bias)",
        "v.blk.{bid}.attn_q.{kind}",
        "v.blk.{bid}.attn_k.{kind}",
        "v.blk.{bid}.attn_v.{kind}",
        shape=("v_qkv_rows", "v_hidden"),
        transform=Transform.SPLIT_ROWS_3,
    ),
    _rule(
        _V,
        _VBLK + r"attn\.proj\.(?P<kind>weight|bias)",
        "v.blk.{bid}.attn_out.{kind}",
        shape=("v_hidden", "v_hidden"),
    ),
    _rule(
        _V,
        _VBLK + r"mlp\.(?P<ffn>gate|up)_proj\.(?P<kind>weight|bias)",
        "v.blk.{bid}.ffn_{ffn}.{kind}",
        shape=("v_ffn", "v_hidden"),
    ),
    _rule(
        _V,
        _VBLK + r"mlp\.down_proj\.(?P<kind>weight|bias)",
        "v.blk.{bid}.ffn_down.{kind}",
        shape=("v_hidden", "v_ffn"),
    ),
    _rule(_V, r"visual\.merger\.ln_q\.weight", "v.post_ln.weight", shape=("v_hidden",)),
    _rule(
        _V,
        r"visual\.merger\.mlp\.0\.(?P<kind>weight|bias)",
        "mm.0.{kind}",
        shape=("merged", "merged"),
    ),
    _rule(
        _V,
        r"visual\.merger\.mlp\.2\.(?P<kind>weight|bias)",
        "mm.2.{kind}",
        shape=("out_hidden", "merged"),
    ),
)

_COMPILED = tuple((re.compile(rule.pattern), rule) for rule in TENSOR_RULES)


def normalise_name(name: str) -> str:
    """A checkpoint (or adapter) tensor name in the legacy hub layout."""
    for old, new in NAME_PREFIX_REWRITES:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


@dataclass(frozen=True)
class MappedTensor:
    """One checkpoint tensor and the GGUF tensors it becomes."""

    source_name: str  # as stored in the checkpoint
    hf_name: str  # normalised legacy name
    part: Part
    targets: tuple[str, ...]
    transform: Transform
    block: int | None
    shape: tuple[str, ...]  # dimension names, resolved by config_dimensions


def map_tensor(source_name: str) -> MappedTensor:
    """Map one checkpoint tensor name; an unknown name is an error that names it."""
    hf_name = normalise_name(source_name)
    for regex, rule in _COMPILED:
        match = regex.fullmatch(hf_name)
        if match:
            groups = match.groupdict()
            return MappedTensor(
                source_name=source_name,
                hf_name=hf_name,
                part=rule.part,
                targets=tuple(t.format(**groups) for t in rule.targets),
                transform=rule.transform,
                block=int(groups["bid"]) if "bid" in groups else None,
                shape=rule.shape[:1] if groups.get("kind") == "bias" else rule.shape,
            )
    raise UnknownTensorError(
        f"the checkpoint holds a tensor the converter does not know: {source_name!r}. It is not part of "
        "a Qwen2.5-VL model; remove it from the checkpoint or report it if this is a new variant"
    )


def map_checkpoint(names: Iterable[str], config: ModelConfig) -> list[MappedTensor]:
    """Map every tensor and check the set is complete for the config (no extras, none missing)."""
    mapped = [map_tensor(n) for n in names]
    seen: dict[str, str] = {}
    for item in mapped:
        if item.block is not None:
            limit = config.text.num_layers if item.part is Part.TEXT else config.vision.depth
            if item.block >= limit:
                raise UnknownTensorError(
                    f"{item.source_name!r} belongs to layer {item.block}, but config.json says there are "
                    f"only {limit} layers: the config does not match the weights"
                )
        for target in item.targets:
            if target in seen:
                raise UnknownTensorError(
                    f"{item.source_name!r} and {seen[target]!r} both map to {target}: the checkpoint mixes "
                    "two naming layouts; keep one copy of each tensor"
                )
            seen[target] = item.source_name
    missing = sorted(set(expected_gguf_names(config)) - set(seen))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UnknownTensorError(
            f"the checkpoint is incomplete: {len(missing)} tensors are missing ({shown}); "
            "download the complete checkpoint folder"
        )
    order = {part: i for i, part in enumerate(Part)}
    return sorted(mapped, key=lambda m: (order[m.part], _natural_key(m.targets[0])))


@dataclass(frozen=True)
class Dimension:
    """One named size the table's shapes use: its value and where config.json says so."""

    size: int
    source: str  # for messages, e.g. "hidden_size 3584"


def config_dimensions(config: ModelConfig) -> dict[str, Dimension]:
    """The sizes every checkpoint tensor's shape is made of, from the normalised config."""
    text, vision = config.text, config.vision
    merge = vision.spatial_merge_size
    return {
        "vocab": Dimension(text.vocab_size, f"vocab_size {text.vocab_size}"),
        "hidden": Dimension(text.hidden_size, f"hidden_size {text.hidden_size}"),
        "q_rows": Dimension(
            text.num_heads * text.head_dim,
            f"num_attention_heads {text.num_heads} x head size {text.head_dim}",
        ),
        "kv_rows": Dimension(
            text.num_kv_heads * text.head_dim,
            f"num_key_value_heads {text.num_kv_heads} x head size {text.head_dim}",
        ),
        "ffn": Dimension(text.intermediate_size, f"intermediate_size {text.intermediate_size}"),
        "v_hidden": Dimension(
            vision.hidden_size, f"vision_config.hidden_size {vision.hidden_size}"
        ),
        "v_qkv_rows": Dimension(
            3 * vision.hidden_size, f"3 x vision_config.hidden_size {vision.hidden_size}"
        ),
        "v_ffn": Dimension(
            vision.intermediate_size,
            f"vision_config.intermediate_size {vision.intermediate_size}",
        ),
        "channels": Dimension(vision.in_channels, f"vision_config.in_chans {vision.in_channels}"),
        "time": Dimension(
            vision.temporal_patch_size,
            f"vision_config.temporal_patch_size {vision.temporal_patch_size}",
        ),
        "patch": Dimension(vision.patch_size, f"vision_config.patch_size {vision.patch_size}"),
        "merged": Dimension(
            merge * merge * vision.hidden_size,
            f"vision_config.spatial_merge_size {merge} squared x hidden_size {vision.hidden_size}",
        ),
        "out_hidden": Dimension(
            vision.out_hidden_size, f"vision_config.out_hidden_size {vision.out_hidden_size}"
        ),
    }


def check_shapes(
    mapped: Iterable[MappedTensor], shapes: Mapping[str, tuple[int, ...]], config: ModelConfig
) -> None:
    """Refuse a checkpoint whose tensor shapes (by source name, from the safetensors headers)
    are not the ones config.json implies; the message names the first such tensor."""
    dims = config_dimensions(config)
    mismatches = []
    for item in mapped:
        actual = tuple(shapes[item.source_name])
        expected = tuple(dims[d].size for d in item.shape)
        if actual != expected:
            mismatches.append((item, actual, expected))
    if not mismatches:
        return
    item, actual, expected = mismatches[0]
    if len(actual) == len(expected):
        said = dict.fromkeys(
            dims[d].source for d, a, e in zip(item.shape, actual, expected, strict=True) if a != e
        )
        claim = f"config.json says {', '.join(said)}, but"
    else:
        claim = f"config.json implies a {len(expected)}-dimensional tensor, but"
    others = len(mismatches) - 1
    more = (
        f" ({others} more {'tensor disagrees' if others == 1 else 'tensors disagree'} too)"
        if others
        else ""
    )
    raise ShapeMismatchError(
        f"{claim} {item.source_name} is {list(actual)} (expected {list(expected)}){more}: the "
        "weights and config.json come from different models, or a file is damaged; download the "
        "checkpoint folder again (and do not edit config.json)"
    )


def _natural_key(name: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def expected_gguf_names(config: ModelConfig) -> list[str]:
    """Every tensor llama.cpp needs (``output.weight`` only when the embeddings are untied)."""
    names = ["token_embd.weight", "output_norm.weight"]
    if not config.text.tie_word_embeddings:
        names.append("output.weight")
    for i in range(config.text.num_layers):
        names += [f"blk.{i}.{n}" for n in _TEXT_BLOCK]
    names += ["v.patch_embd.weight", "v.patch_embd.weight.1", "v.post_ln.weight"]
    names += ["mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"]
    for i in range(config.vision.depth):
        names += [f"v.blk.{i}.{n}" for n in _VISION_BLOCK]
    return names


_TEXT_BLOCK = (
    "attn_norm.weight",
    "attn_q.weight",
    "attn_q.bias",
    "attn_k.weight",
    "attn_k.bias",
    "attn_v.weight",
    "attn_v.bias",
    "attn_output.weight",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight",
)
_VISION_BLOCK = (
    "ln1.weight",
    "ln2.weight",
    *(f"attn_{x}.{k}" for x in "qkv" for k in ("weight", "bias")),
    "attn_out.weight",
    "attn_out.bias",
    *(f"ffn_{x}.{k}" for x in ("gate", "up", "down") for k in ("weight", "bias")),
)
