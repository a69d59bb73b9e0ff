"""What the converter refuses, what it writes, and how it behaves when things go wrong.

These run the real converter on the tiny fixture (a fraction of a second each) and read the
output with gguf-py; llama.cpp itself is exercised in test_convert_parity / test_convert_quants.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from checkpoint_variants import copy_checkpoint, write_safetensors
from gguf import GGUFValueType as V

from convert import ConversionError, convert_checkpoint, gguf_write, pipeline, quantize
from convert import cli as convert_cli
from convert.errors import (
    AdapterError,
    InsufficientDiskSpaceError,
    MissingFileError,
    NotQwen25VLError,
    OutputExistsError,
    UnknownTensorError,
    UnsupportedCheckpointError,
)
from convert.gguf_write import f32_to_bf16
from convert.lora import LoraAdapter
from convert.safetensors_source import TensorSource, bf16_to_f32
from convert.tensor_map import map_tensor, normalise_name

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-qwen25vl"
CHECKPOINT = FIXTURE / "checkpoint"


def copy_folder(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def convert_tiny(outdir: Path, **kwargs: object) -> pipeline.ConversionResult:
    kwargs.setdefault("quant", "F16")
    kwargs.setdefault("name", "tiny")
    return convert_checkpoint(kwargs.pop("src", CHECKPOINT), outdir, **kwargs)  # type: ignore[arg-type]


def fields(path: Path) -> dict[str, tuple[list[V], object]]:
    reader = gguf.GGUFReader(path)
    return {k: (f.types, f.contents()) for k, f in reader.fields.items()}


# --- what gets written ----------------------------------------------------------------------------


def test_the_manifest_records_which_checkpoint_the_files_came_from(tmp_path: Path) -> None:
    # A Hugging Face cache snapshot of QwenStoryteller2: the repo is in the folder's path.
    snapshot = tmp_path / "hub" / "models--daniel3303--QwenStoryteller2" / "snapshots" / "ab12cd"
    copy_folder(CHECKPOINT, snapshot)
    second = convert_checkpoint(snapshot, tmp_path / "out2", quant="F16")
    assert second.manifest["checkpoint"]["repo"] == "daniel3303/QwenStoryteller2"
    assert second.manifest["checkpoint"]["revision"] == "ab12cd"
    assert second.text_gguf.name == "QwenStoryteller2-F16.gguf"  # not the snapshot's hash
    saved = json.loads(second.manifest_path.read_text(encoding="utf-8"))
    assert saved["checkpoint"] == second.manifest["checkpoint"]
    # A plain folder whose config names its hub repo (as transformers' save_pretrained does).
    plain = copy_folder(CHECKPOINT, tmp_path / "downloaded")
    config = json.loads((plain / "config.json").read_text(encoding="utf-8"))
    config["_name_or_path"] = "daniel3303/QwenStoryteller"
    (plain / "config.json").write_text(json.dumps(config), encoding="utf-8")
    first = convert_tiny(tmp_path / "out1", src=plain)
    assert first.manifest["checkpoint"]["repo"] == "daniel3303/QwenStoryteller"
    assert first.manifest["checkpoint"]["revision"] is None
    # Without either, the fingerprint still tells checkpoints apart.
    unknown = convert_tiny(tmp_path / "out3")
    assert unknown.manifest["checkpoint"]["repo"] is None
    fingerprints = {r.manifest["checkpoint"]["fingerprint"] for r in (first, second, unknown)}
    assert len(fingerprints) == 2  # the edited config differs; the two copies do not
    assert unknown.manifest["lora_checkpoint"] is None


def test_text_gguf_keys_have_the_types_llama_cpp_asserts(tmp_path: Path) -> None:
    result = convert_tiny(tmp_path)
    kv = fields(result.text_gguf)
    assert kv["general.architecture"][1] == "qwen2vl"
    for key in (
        "qwen2vl.block_count",
        "qwen2vl.context_length",
        "qwen2vl.embedding_length",
        "qwen2vl.feed_forward_length",
        "qwen2vl.attention.head_count",
        "qwen2vl.attention.head_count_kv",
        "tokenizer.ggml.eos_token_id",
        "general.file_type",
    ):
        assert kv[key][0] == [V.UINT32], key
    assert kv["qwen2vl.rope.dimension_sections"] == ([V.ARRAY, V.INT32], [8, 12, 12, 0])
    assert kv["qwen2vl.rope.freq_base"] == ([V.FLOAT32], 1000000.0)
    assert kv["tokenizer.ggml.model"][1] == "gpt2" and kv["tokenizer.ggml.pre"][1] == "qwen2"
    assert kv["tokenizer.ggml.token_type"][0] == [V.ARRAY, V.INT32]
    tokenizer_config = json.loads((CHECKPOINT / "tokenizer_config.json").read_text())
    assert kv["tokenizer.chat_template"][1] == tokenizer_config["chat_template"]
    assert kv["general.file_type"][1] == 1  # MOSTLY_F16


def test_vocabulary_is_padded_to_the_embedding_rows(tmp_path: Path) -> None:
    result = convert_tiny(tmp_path)
    kv = fields(result.text_gguf)
    tokens, types = kv["tokenizer.ggml.tokens"][1], kv["tokenizer.ggml.token_type"][1]
    tokenizer = json.loads((CHECKPOINT / "tokenizer.json").read_text())
    n_defined = len(tokenizer["model"]["vocab"]) + len(tokenizer["added_tokens"])
    assert len(tokens) == len(types) == 640  # config vocab_size / embedding rows
    assert tokens[n_defined:] == [f"[PAD{i}]" for i in range(n_defined, 640)]
    assert set(types[n_defined:]) == {5}
    ids = {t: i for i, t in enumerate(tokens)}
    assert types[ids["<|im_end|>"]] == 3 and types[ids["<|image_pad|>"]] == 3
    assert types[ids["<think>"]] == 4  # added but not special: user-defined
    assert kv["tokenizer.ggml.eos_token_id"][1] == ids["<|im_end|>"]
    assert kv["tokenizer.ggml.padding_token_id"][1] == ids["<|endoftext|>"]
    assert len(kv["tokenizer.ggml.merges"][1]) == len(tokenizer["model"]["merges"])


def test_mmproj_keys_and_split_tensors(tmp_path: Path) -> None:
    result = convert_tiny(tmp_path)
    kv = fields(result.mmproj_gguf)
    assert kv["general.architecture"][1] == "clip"
    assert kv["clip.projector_type"][1] == "qwen2.5vl_merger"
    assert kv["clip.has_vision_encoder"] == ([V.BOOL], True)
    assert kv["clip.use_silu"] == ([V.BOOL], True)
    assert kv["clip.vision.n_wa_pattern"] == ([V.UINT32], 2)  # fullatt_block_indexes [1]
    assert kv["clip.vision.projection_dim"] == ([V.UINT32], 256)
    assert kv["clip.vision.image_mean"][0] == [V.ARRAY, V.FLOAT32]
    reader = gguf.GGUFReader(result.mmproj_gguf)
    tensors = {t.name: t for t in reader.tensors}
    assert "v.patch_embd.bias" not in tensors and not any("qkv" in n for n in tensors)
    source = TensorSource.from_folder(CHECKPOINT)
    qkv = source.float32("visual.blocks.1.attn.qkv.weight")
    conv = source.float32("visual.patch_embed.proj.weight")
    k_rows = np.asarray(tensors["v.blk.1.attn_k.weight"].data, dtype=np.float32)
    np.testing.assert_array_equal(k_rows, qkv[64:128].astype(np.float16).astype(np.float32))
    second_kernel = np.asarray(tensors["v.patch_embd.weight.1"].data, dtype=np.float32)
    np.testing.assert_array_equal(
        second_kernel, conv[:, :, 1].astype(np.float16).astype(np.float32)
    )


def test_output_is_byte_identical_when_tensors_are_streamed_in_small_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = convert_tiny(tmp_path / "whole", quant="Q8_0", lora=FIXTURE / "lora")
    monkeypatch.setattr(gguf_write, "CHUNK_ELEMENTS", 1000)  # many chunks per tensor
    chunked = convert_tiny(tmp_path / "chunked", quant="Q8_0", lora=FIXTURE / "lora")
    assert whole.text_gguf.read_bytes() == chunked.text_gguf.read_bytes()
    assert whole.mmproj_gguf.read_bytes() == chunked.mmproj_gguf.read_bytes()


def test_bf16_round_trip_and_rounding() -> None:
    values = np.array([1.0, -2.5, 3.140625, 2.0**-100, np.inf, 0.0], dtype=np.float32)
    assert np.array_equal(bf16_to_f32(f32_to_bf16(values)), values)  # exactly representable
    halfway = np.array([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8], dtype=np.float32)  # ties go to even
    assert bf16_to_f32(f32_to_bf16(halfway)).tolist() == [1.0, 1.0 + 4 * 2.0**-8]
    assert np.isnan(bf16_to_f32(f32_to_bf16(np.array([np.nan], dtype=np.float32))))[0]


def test_tensor_names_map_through_the_table() -> None:
    assert map_tensor("model.language_model.layers.3.self_attn.k_proj.bias").targets == (
        "blk.3.attn_k.bias",
    )
    assert map_tensor("visual.blocks.0.attn.qkv.weight").targets == (
        "v.blk.0.attn_q.weight",
        "v.blk.0.attn_k.weight",
        "v.blk.0.attn_v.weight",
    )
    assert map_tensor("model.visual.merger.mlp.2.bias").targets == ("mm.2.bias",)
    assert normalise_name("model.visual.blocks.1.norm1.weight") == "visual.blocks.1.norm1.weight"


def test_lora_merge_is_w_plus_scaled_b_times_a() -> None:
    adapter = LoraAdapter(FIXTURE / "lora-patterns")  # rsLoRA, r 4, q_proj r 8, v_proj alpha 24
    q = adapter.pairs["model.layers.0.self_attn.q_proj.weight"]
    v = adapter.pairs["model.layers.1.self_attn.v_proj.weight"]
    k = adapter.pairs["model.layers.0.self_attn.k_proj.weight"]
    assert (q.rank, q.scale) == (8, pytest.approx(8.0 / np.sqrt(8)))
    assert (v.rank, v.scale) == (4, pytest.approx(24.0 / 2.0))
    assert (k.rank, k.scale) == (4, pytest.approx(8.0 / 2.0))
    weight = np.ones((256, 256), dtype=np.float32)
    merged = adapter.merge("model.layers.0.self_attn.q_proj.weight", weight)
    a = adapter.tensors.float32(q.a_key)
    b = adapter.tensors.float32(q.b_key)
    np.testing.assert_allclose(merged, weight + q.scale * (b @ a), rtol=1e-6)


# --- what gets refused ----------------------------------------------------------------------------


def test_refuses_another_architecture_and_names_it(tmp_path: Path) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "llama")
    (src / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    with pytest.raises(NotQwen25VLError, match="LlamaForCausalLM"):
        convert_tiny(tmp_path / "out", src=src)


def test_refuses_an_adapter_passed_as_the_model(tmp_path: Path) -> None:
    with pytest.raises(NotQwen25VLError, match="--lora"):
        convert_tiny(tmp_path / "out", src=FIXTURE / "lora")


def test_missing_shard_is_named(tmp_path: Path) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    (src / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(MissingFileError, match=r"model-00002-of-00002\.safetensors"):
        convert_tiny(tmp_path / "out", src=src)


def test_unknown_tensor_is_named_not_skipped(tmp_path: Path) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    write_safetensors(
        src / "extra.safetensors",
        {"model.layers.0.self_attn.rotary_emb.inv_freq": np.ones(4, np.float32)},
    )
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.layers.0.self_attn.rotary_emb.inv_freq"] = "extra.safetensors"
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(UnknownTensorError, match=r"rotary_emb\.inv_freq"):
        convert_tiny(tmp_path / "out", src=src)


def test_a_tensor_stored_in_two_shards_is_refused_not_overwritten(tmp_path: Path) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    # A stray shard from another download that holds a tensor the checkpoint already has.
    write_safetensors(src / "extra.safetensors", {"model.norm.weight": np.ones(256, np.float32)})
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.norm.weight"] = "extra.safetensors"
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConversionError, match=r"model\.norm\.weight is stored twice.*again"):
        convert_tiny(tmp_path / "out", src=src)
    assert not (tmp_path / "out").exists()


def test_missing_tensor_is_reported(tmp_path: Path) -> None:
    src = copy_checkpoint(CHECKPOINT, tmp_path / "src", single_file=True)
    source = TensorSource.from_folder(src)
    kept = {n: np.array(source.raw(n)) for n in source if n != "visual.merger.mlp.2.bias"}
    write_safetensors(src / "model.safetensors", kept)
    with pytest.raises(UnknownTensorError, match=r"incomplete.*mm\.2\.bias"):
        convert_tiny(tmp_path / "out", src=src)


@pytest.mark.parametrize(
    ("folder", "file_name"),
    [
        ("checkpoint", "tokenizer.json"),
        ("checkpoint", "model.safetensors.index.json"),
        ("lora", "adapter_config.json"),
    ],
)
def test_a_broken_json_file_is_named(tmp_path: Path, folder: str, file_name: str) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "checkpoint")
    adapter = copy_folder(FIXTURE / "lora", tmp_path / "lora")
    (tmp_path / folder / file_name).write_text('{"truncated": ')
    with pytest.raises(ConversionError, match=rf"{re.escape(file_name)} is not valid JSON.*again"):
        convert_tiny(tmp_path / "out", src=src, lora=adapter)


def edit_config(src: Path, text: dict[str, object], vision: dict[str, object]) -> None:
    config = json.loads((src / "config.json").read_text())
    config.update(text)
    config["vision_config"].update(vision)
    (src / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("text", "vision", "message"),
    [
        # the brief's case: a config for a bigger model next to these weights
        (
            {"hidden_size": 512, "num_attention_heads": 8},
            {"out_hidden_size": 512},
            r"config\.json says hidden_size 512, but model\.layers\.0\.self_attn\.k_proj\.weight is "
            r"\[128, 256\] \(expected \[128, 512\]\) \(24 more tensors disagree too\)",
        ),
        (
            {"vocab_size": 1280},
            {},
            r"vocab_size 1280, but lm_head\.weight is \[640, 256\].*"
            r"\(1 more tensor disagrees too\)",  # the embedding
        ),
        (
            {"intermediate_size": 1024},
            {},
            r"intermediate_size 1024, but model\.layers\.0\.mlp\.down_proj\.weight is \[256, 512\]",
        ),
        (
            {"num_key_value_heads": 4},
            {},
            r"num_key_value_heads 4 x head size 64, but model\.layers\.0\.self_attn\.k_proj\.bias is "
            r"\[128\] \(expected \[256\]\)",
        ),
        (
            {},
            {"intermediate_size": 192},
            r"vision_config\.intermediate_size 192, but visual\.blocks\.0\.mlp\.down_proj\.weight",
        ),
        (
            {},
            {"hidden_size": 96},
            r"spatial_merge_size 2 squared x hidden_size 96, but visual\.merger\.mlp\.0\.bias is \[256\]",
        ),
        (
            {},
            {"patch_size": 16},
            r"vision_config\.patch_size 16, but visual\.patch_embed\.proj\.weight is \[64, 3, 2, 14, 14\]",
        ),
    ],
)
def test_config_that_disagrees_with_the_weights_is_refused_before_writing(
    tmp_path: Path, text: dict[str, object], vision: dict[str, object], message: str
) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    edit_config(src, text, vision)
    with pytest.raises(UnsupportedCheckpointError, match=message) as caught:
        convert_tiny(tmp_path / "out", src=src)
    assert "come from different models" in str(caught.value)
    assert "download the checkpoint folder again" in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        # a shard from another model size
        (
            "model.layers.1.self_attn.q_proj.weight",
            (128, 256),
            r"num_attention_heads 4 x head size 64, but model\.layers\.1\.self_attn\.q_proj\.weight "
            r"is \[128, 256\] \(expected \[256, 256\]\)",
        ),
        (
            "model.norm.weight",
            (128,),
            r"hidden_size 256, but model\.norm\.weight is \[128\]",
        ),
        # a Conv3d kernel llama.cpp cannot split into its two Conv2d kernels
        (
            "visual.patch_embed.proj.weight",
            (64, 3, 1, 14, 14),
            r"temporal_patch_size 2, but visual\.patch_embed\.proj\.weight is \[64, 3, 1, 14, 14\]",
        ),
        (
            "visual.blocks.1.attn.qkv.bias",
            (64,),
            r"3 x vision_config\.hidden_size 64, but visual\.blocks\.1\.attn\.qkv\.bias is \[64\]",
        ),
        (
            "visual.merger.mlp.2.weight",
            (128, 256),
            r"out_hidden_size 256, but visual\.merger\.mlp\.2\.weight is \[128, 256\]",
        ),
        (
            "visual.blocks.0.norm2.weight",
            (64, 1),
            r"implies a 1-dimensional tensor, but visual\.blocks\.0\.norm2\.weight is \[64, 1\]",
        ),
    ],
)
def test_a_tensor_shape_the_config_does_not_imply_is_refused_before_writing(
    tmp_path: Path, name: str, shape: tuple[int, ...], message: str
) -> None:
    src = copy_checkpoint(CHECKPOINT, tmp_path / "src", single_file=True, dtype="F32")
    source = TensorSource.from_folder(src)
    tensors = {n: np.array(source.raw(n)) for n in source}
    tensors[name] = np.zeros(shape, np.float32)
    write_safetensors(src / "model.safetensors", tensors)
    with pytest.raises(UnsupportedCheckpointError, match=message):
        convert_tiny(tmp_path / "out", src=src)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "vision", "message"),
    [
        ({}, {"depth": 4, "fullatt_block_indexes": [1]}, r"fullatt_block_indexes \[1\].*\[1, 3\]"),
        ({}, {"fullatt_block_indexes": [-1]}, "fullatt_block_indexes"),
        ({}, {"spatial_merge_size": 4}, "spatial_merge_size must be 2"),
        ({}, {"temporal_patch_size": 3}, "temporal_patch_size must be 2"),
        ({}, {"num_heads": 32}, r"head size .* multiple of 4"),  # 64 / 32 = 2
        ({}, {"intermediate_size": 64}, "intermediate_size equal to hidden_size"),
        ({}, {"out_hidden_size": 128}, "out_hidden_size 128 must equal the text hidden_size 256"),
        ({}, {"in_chans": 1}, "in_chans is 1"),
        ({}, {"window_size": 224}, "112-pixel window"),
        ({"rope_scaling": {"type": "mrope", "mrope_section": [8, 12, 10]}}, {}, "mrope_section"),
        ({"num_key_value_heads": 0}, {}, r"num_key_value_heads 0, but sizes must be positive"),
        ({}, {"num_heads": 0}, r"vision_config\.num_heads 0, but sizes must be positive"),
    ],
)
def test_config_llama_cpp_would_reject_or_run_wrong_is_refused(
    tmp_path: Path, text: dict[str, object], vision: dict[str, object], message: str
) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    edit_config(src, text, vision)
    with pytest.raises(UnsupportedCheckpointError, match=message) as caught:
        convert_tiny(tmp_path / "out", src=src)
    assert "download the checkpoint folder again" in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("half", ["lora_A", "lora_B"])
def test_adapter_for_another_base_is_refused(tmp_path: Path, half: str) -> None:
    """An A (in-features) or B (out-features) matrix that does not fit the base weight."""
    adapter = copy_folder(FIXTURE / "lora", tmp_path / "other")
    source = TensorSource([adapter / "adapter_model.safetensors"])
    tensors = {}
    for name in source:
        array = np.array(source.float32(name))
        if f".{half}." in name:
            wider = (array.shape[0], 512) if half == "lora_A" else (512, array.shape[1])
            array = np.zeros(wider, np.float32)
        tensors[name] = array
    write_safetensors(adapter / "adapter_model.safetensors", tensors)
    with pytest.raises(AdapterError, match=r"another base model.*512"):
        convert_tiny(tmp_path / "out", lora=adapter)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"peft_type": "IA3"}, "IA3"),
        ({"modules_to_save": ["lm_head"]}, "merge_and_unload"),
    ],
)
def test_unsupported_adapter_kinds_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    adapter = copy_folder(FIXTURE / "lora", tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config.update(change)
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match=message):
        convert_tiny(tmp_path / "out", lora=adapter)


def test_existing_output_needs_force(tmp_path: Path) -> None:
    first = convert_tiny(tmp_path)
    before = first.text_gguf.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="--force"):
        convert_tiny(tmp_path)
    assert first.text_gguf.stat().st_mtime_ns == before
    # A different quant into the same folder replaces the old pair when forced: one of each remains.
    second = convert_tiny(tmp_path, quant="Q8_0", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json", second.text_gguf.name, second.mmproj_gguf.name]
    )


def test_not_enough_disk_space_is_checked_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        pipeline.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000)
    )
    with pytest.raises(InsufficientDiskSpaceError, match="GB"):
        convert_tiny(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_k_quant_space_check_counts_what_each_path_holds_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Straight K-quants hold only their result, so room for the 16-bit pair (what an F16
    conversion writes) is enough; --via-intermediate holds the F16/BF16 file and the quantized
    one at once, so it is not."""
    f16 = convert_tiny(tmp_path / "f16")
    room_for_f16 = (
        f16.text_gguf.stat().st_size + f16.mmproj_gguf.stat().st_size + pipeline.DISK_MARGIN_BYTES
    )
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(
        pipeline.shutil,
        "disk_usage",
        lambda path: usage(10**12, 10**12 - room_for_f16, room_for_f16),
    )
    convert_tiny(tmp_path / "f16-again")  # the check itself lets F16 through
    convert_tiny(tmp_path / "q4", quant="Q4_K_M")
    with pytest.raises(InsufficientDiskSpaceError, match="free some space"):
        convert_tiny(tmp_path / "q4-via", quant="Q4_K_M", via_intermediate=True)
    assert list((tmp_path / "q4-via").iterdir()) == []


def test_a_disk_with_less_than_twice_the_room_warns_and_converts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Less than twice the room needed is said (through ``warn``, which the GUI shows) and the
    conversion goes on; with room to spare nothing is said."""
    first = convert_tiny(tmp_path / "first")
    needed = (
        first.text_gguf.stat().st_size
        + first.mmproj_gguf.stat().st_size
        + pipeline.DISK_MARGIN_BYTES
    )
    real_usage = shutil.disk_usage
    usage = namedtuple("usage", "total used free")
    for free, warns in ((needed * 3 // 2, True), (needed * 3, False)):
        monkeypatch.setattr(
            pipeline.shutil, "disk_usage", lambda path, free=free: usage(10**12, 0, free)
        )
        said: list[str] = []
        result = convert_tiny(tmp_path / f"free-{free}", warn=said.append)
        assert result.text_gguf.is_file()
        assert bool(said) is warns
        if warns:
            assert "GB free" in said[0] and "free some space" in said[0]
    monkeypatch.setattr(pipeline.shutil, "disk_usage", real_usage)


def test_a_failure_midway_leaves_nothing_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_chunks = gguf_write.TensorProducer.chunks

    def failing_chunks(self: gguf_write.TensorProducer, planned: gguf_write.PlannedTensor):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 30:  # inside the mmproj, after the text file was written
            raise KeyboardInterrupt
        return real_chunks(self, planned)

    monkeypatch.setattr(gguf_write.TensorProducer, "chunks", failing_chunks)
    with pytest.raises(KeyboardInterrupt):
        convert_tiny(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_midway_is_said_as_such_and_leaves_nothing(
    small_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk (a real small tmpfs) fills after the space check, as when another program
    writes meanwhile: the message says the disk is full, what converting needs and that
    nothing was lost; no partial file is left."""
    real_chunks = gguf_write.TensorProducer.chunks

    def fill_then_write(self: gguf_write.TensorProducer, planned: gguf_write.PlannedTensor):  # type: ignore[no-untyped-def]
        small_disk.fill()
        return real_chunks(self, planned)

    monkeypatch.setattr(gguf_write.TensorProducer, "chunks", fill_then_write)
    monkeypatch.setattr(pipeline, "DISK_MARGIN_BYTES", 0)  # the tiny model fits the small disk
    out = small_disk.path / "out"
    with pytest.raises(InsufficientDiskSpaceError) as raised:
        convert_tiny(out)
    message = str(raised.value)
    assert f"the disk of {out} is full (converting needs about" in message
    assert "MB is free" in message and "another --outdir" in message
    assert "nothing was lost" in message
    assert list(out.iterdir()) == []


# Stands in for the quantizer child: starts the output file, reports progress once, then works
# far longer than any test (the real one on the tiny model is done before it can be stopped).
SLOW_QUANTIZER = (
    "import sys, time; open(sys.argv[1], 'wb').write(b'GGUF'); "
    "sys.stderr.write('PROGRESS\\n'); sys.stderr.flush(); time.sleep(60)"
)


@pytest.mark.parametrize("via_intermediate", [False, True], ids=["straight", "via-intermediate"])
def test_interrupt_while_k_quantizing_kills_the_child_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via_intermediate: bool
) -> None:
    children: list[subprocess.Popen] = []
    real_popen = subprocess.Popen
    progress_line = "bytes 1000 5000" if not via_intermediate else "[   1/  30] blk.0.attn_q.weight"

    def slow_quantizer(command: list[str], **kwargs: object) -> subprocess.Popen:
        # python -m convert.quantize straight JOB | python -m convert.quantize SRC DST FTYPE THREADS
        destination = json.loads(command[4])["out"] if command[3] == "straight" else command[4]
        script = SLOW_QUANTIZER.replace("PROGRESS", progress_line)
        child = real_popen([sys.executable, "-c", script, destination], **kwargs)  # type: ignore[call-overload]
        children.append(child)
        return child

    def interrupt_while_quantizing(event: pipeline.ProgressEvent) -> None:
        stage = pipeline.Stage.QUANTIZE if via_intermediate else pipeline.Stage.TEXT
        if event.stage is stage and event.done >= 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the parent while the child works

    monkeypatch.setattr(quantize.subprocess, "Popen", slow_quantizer)
    with pytest.raises(KeyboardInterrupt):
        convert_tiny(
            tmp_path,
            quant="Q4_K_M",
            progress=interrupt_while_quantizing,
            via_intermediate=via_intermediate,
        )
    assert len(children) == 1
    assert children[0].returncode not in (None, 0)  # killed and reaped, not left working
    assert list(tmp_path.iterdir()) == []


# A module named like llama-cpp-python that is not it: what a user's folder may hold.
IMPOSTOR_LLAMA_CPP = "raise ImportError('this llama_cpp.py is not llama-cpp-python')\n"


@pytest.mark.slow
def test_k_quants_work_from_a_folder_holding_a_llama_cpp_py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m`` puts the working directory first on sys.path: the user's llama_cpp.py must
    not stand in for the real one in the quantizer child (relative --outdir included)."""
    pytest.importorskip("llama_cpp")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "llama_cpp.py").write_text(IMPOSTOR_LLAMA_CPP)
    monkeypatch.chdir(workdir)
    code = convert_cli.main([str(CHECKPOINT), "--outdir", "out", "--quant", "Q4_K_M"])
    assert code == 0, capsys.readouterr().err
    reader = gguf.GGUFReader(workdir / "out" / "checkpoint-Q4_K_M.gguf")
    assert any(t.tensor_type == gguf.GGMLQuantizationType.Q4_K for t in reader.tensors)


def test_a_broken_llama_cpp_install_is_reported_with_its_real_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When llama_cpp cannot be imported, the message names why, not only "install it"."""
    broken = tmp_path / "site"
    broken.mkdir()
    (broken / "llama_cpp.py").write_text(IMPOSTOR_LLAMA_CPP)
    monkeypatch.setenv("PYTHONPATH", str(broken))  # ahead of site-packages in the child
    with pytest.raises(quantize.QuantizationError) as raised:
        convert_tiny(tmp_path / "out", quant="Q4_K_M")
    message = str(raised.value)
    assert "K-quants need llama-cpp-python" in message
    assert "ImportError: this llama_cpp.py is not llama-cpp-python" in message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


# --- the command line -----------------------------------------------------------------------------


def test_cli_converts_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = convert_cli.main(
        [str(CHECKPOINT), "--outdir", str(tmp_path), "--quant", "q8_0", "--name", "tiny"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "tiny-Q8_0.gguf" in out and "mmproj-tiny-F16.gguf" in out
    assert (tmp_path / "tiny-Q8_0.gguf").is_file()


def test_cli_reports_errors_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = convert_cli.main([str(tmp_path / "nowhere"), "--outdir", str(tmp_path / "out")])
    assert code == 1
    assert "is not a folder" in capsys.readouterr().err


def test_convert_errors_are_conversion_errors() -> None:
    # The CLI and the app catch ConversionError: every error the converter defines must be one.
    from convert import errors

    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert {
        NotQwen25VLError,
        MissingFileError,
        UnknownTensorError,
        AdapterError,
        OutputExistsError,
        InsufficientDiskSpaceError,
        UnsupportedCheckpointError,
    } <= defined
    for error in defined:
        assert issubclass(error, ConversionError), error.__name__


def test_both_merge_formats_become_space_joined_pairs() -> None:
    from convert.vocab import _merge_string

    assert _merge_string("Ġ t") == "Ġ t"  # the older "left right" string format
    assert _merge_string(["Ġ", "t"]) == "Ġ t"  # the newer pair format
    assert (
        _merge_string(["a b", "c"]) == f"a{chr(ord(' ') + 256)}b c"
    )  # literal space inside a part


def test_duplicate_token_strings_are_refused(tmp_path: Path) -> None:
    src = copy_folder(CHECKPOINT, tmp_path / "src")
    tokenizer = json.loads((src / "tokenizer.json").read_text())
    first = next(iter(tokenizer["model"]["vocab"]))
    tokenizer["added_tokens"].append({"id": 630, "content": first, "special": False})
    (src / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ConversionError, match="twice"):
        convert_tiny(tmp_path / "out", src=src)
