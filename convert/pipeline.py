"""``convert_checkpoint``: a Qwen2.5-VL checkpoint (+ LoRA) -> text GGUF + mmproj GGUF + manifest.

Order of work: read and check everything (config, tensor names and shapes, tokenizer, adapter,
output folder, disk space) before writing a byte; write both GGUFs under ``*.partial`` names
(K-quants straight from the checkpoint in a child process, ``convert.kquant``); hash; flush to
disk; rename; write manifest.json last. Any failure
removes the partial files, so an interrupted run leaves nothing that looks complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import errno
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
from gguf import GGMLQuantizationType as GGML

from convert import __version__
from convert.config import ModelConfig, read_config
from convert.errors import (
    AdapterError,
    ConversionError,
    InsufficientDiskSpaceError,
    OutputExistsError,
)
from convert.gguf_write import PlannedTensor, TensorProducer, target_shape, write_gguf
from convert.kquant import StraightJob
from convert.lora import LoraAdapter
from convert.provenance import checkpoint_identity, default_name
from convert.quant_types import MmprojType, TextQuant, parse_mmproj_type, parse_quant
from convert.quantize import quantize_gguf, quantize_straight
from convert.safetensors_source import TensorSource
from convert.tensor_map import MappedTensor, Part, Transform, check_shapes, map_checkpoint
from convert.vocab import Vocab, read_vocab

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
TEXT_ARCH = "qwen2vl"
MMPROJ_ARCH = "clip"
QUANTIZATION_VERSION = 2
# clip.cpp reads the image size only for warm-up and sanity checks; Qwen2.5-VL configs have none.
MMPROJ_IMAGE_SIZE = 560
# HF's Qwen2.5-VL vision RMSNorm hard-codes eps 1e-6.
VISION_RMS_EPS = 1e-6
DISK_MARGIN_BYTES = 64 << 20


class Stage(enum.Enum):
    """The steps a conversion reports progress for."""

    DOWNLOAD = "downloading"
    TEXT = "writing text model"
    MMPROJ = "writing vision projector"
    QUANTIZE = "quantizing"
    CHECKSUM = "checksumming"


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units (bytes, or tensors while quantizing) of ``stage``."""

    stage: Stage
    done: int
    total: int
    unit: str


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class ConversionResult:
    """The files a conversion produced; ``manifest`` is manifest.json's content."""

    text_gguf: Path
    mmproj_gguf: Path
    manifest_path: Path
    manifest: dict[str, Any]


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-.")
    return cleaned or "model"


def output_names(name: str, quant: TextQuant, mmproj_type: MmprojType) -> tuple[str, str]:
    """(text file name, mmproj file name) for a model name and types."""
    return f"{name}-{quant.spec.label}.gguf", f"mmproj-{name}-{mmproj_type.spec.label.upper()}.gguf"


def text_tensor_type(planned_name: str, shape: tuple[int, ...], base: GGML) -> GGML:
    """1-D tensors (norms, biases) stay F32; Q8_0 rows that do not split into 32-blocks fall back to F16."""
    if len(shape) <= 1:
        return GGML.F32
    if base is GGML.Q8_0 and shape[-1] % 32:
        return GGML.F16
    return base


def mmproj_tensor_type(planned_name: str, shape: tuple[int, ...], base: GGML) -> GGML:
    """As for text, and the patch kernels are F16 or F32 only (they feed im2col)."""
    if len(shape) > 1 and planned_name.startswith("v.patch_embd."):
        return GGML.F16 if base is GGML.F16 else GGML.F32
    return text_tensor_type(planned_name, shape, base)


def plan_tensors(
    mapped: list[MappedTensor], source: TensorSource, part: Part, base: GGML
) -> list[PlannedTensor]:
    choose = text_tensor_type if part is Part.TEXT else mmproj_tensor_type
    plan = []
    for item in mapped:
        if item.part is not part:
            continue
        shape = target_shape(item, source.entry(item.source_name).shape)
        for index, name in enumerate(item.targets):
            plan.append(PlannedTensor(name, item, index, shape, choose(name, shape, base)))
    return plan


def estimate_output_bytes(
    text_plan: list[PlannedTensor], mmproj_plan: list[PlannedTensor], quant: TextQuant
) -> int:
    """About how many bytes the two GGUF files take (K-quant mixes from their bits per weight)."""
    mmproj = sum(p.nbytes for p in mmproj_plan)
    if not quant.is_kquant:
        return mmproj + sum(p.nbytes for p in text_plan)
    matrices = sum(p.n_elements for p in text_plan if len(p.shape) > 1)
    vectors = sum(p.n_elements for p in text_plan if len(p.shape) <= 1)
    return mmproj + int(matrices * quant.spec.bits_per_weight / 8) + 4 * vectors


def estimate_from_weights(weight_bytes: int, quant: str | TextQuant) -> int:
    """About how many bytes converting a 16-bit checkpoint of ``weight_bytes`` writes (before its
    headers can be read: a download checks the output's disk with this)."""
    text_quant = parse_quant(quant)
    parameters = weight_bytes / 2
    # ~90% of Qwen2.5-VL-7B's parameters are the text model's; the vision tower stays 16-bit.
    return int(parameters * (0.9 * text_quant.spec.bits_per_weight + 0.1 * 16) / 8)


def _intermediate_type(
    mapped: list[MappedTensor], source: TensorSource, adapter: LoraAdapter | None
) -> GGML:
    """What the text model is written as before llama.cpp K-quantizes it: BF16 keeps a bf16
    checkpoint exact; after a float32 LoRA merge (or from F16/F32 weights) F16 is the closer one."""
    all_bf16 = all(
        source.entry(m.source_name).dtype == "BF16" for m in mapped if m.part is Part.TEXT
    )
    return GGML.BF16 if all_bf16 and adapter is None else GGML.F16


def add_text_metadata(
    writer: gguf.GGUFWriter, config: ModelConfig, vocab: Vocab, name: str, file_type: int
) -> None:
    text = config.text
    writer.add_type("model")
    writer.add_name(name)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(QUANTIZATION_VERSION)
    writer.add_block_count(text.num_layers)
    writer.add_context_length(text.max_position_embeddings)
    writer.add_embedding_length(text.hidden_size)
    writer.add_feed_forward_length(text.intermediate_size)
    writer.add_head_count(text.num_heads)
    writer.add_head_count_kv(text.num_kv_heads)
    sections = [int(s) for s in text.mrope_section] + [0] * (4 - len(text.mrope_section))
    writer.add_rope_dimension_sections(sections)
    writer.add_rope_freq_base(float(text.rope_theta))
    # Written for newer llama.cpp; the vendored 0.3.36 graph ignores it (docs/llamacpp.md 9).
    writer.add_layer_norm_rms_eps(float(text.rms_norm_eps))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_types([int(t) for t in vocab.token_types])
    writer.add_token_merges(list(vocab.merges))
    if vocab.bos_id is not None:
        writer.add_bos_token_id(int(vocab.bos_id))
    if vocab.eos_id is not None:
        writer.add_eos_token_id(int(vocab.eos_id))
    if vocab.pad_id is not None:
        writer.add_pad_token_id(int(vocab.pad_id))
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    writer.add_chat_template(vocab.chat_template)


def _mmproj_metadata(
    writer: gguf.GGUFWriter, config: ModelConfig, name: str, file_type: int
) -> None:
    vision = config.vision
    writer.add_type("mmproj")
    writer.add_name(name)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(QUANTIZATION_VERSION)
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type(gguf.VisionProjectorType.QWEN25VL)
    writer.add_vision_use_silu(True)
    writer.add_vision_n_wa_pattern(vision.window_attention_pattern)
    writer.add_vision_attention_layernorm_eps(VISION_RMS_EPS)
    writer.add_vision_projection_dim(config.text.hidden_size)
    writer.add_vision_image_size(MMPROJ_IMAGE_SIZE)
    writer.add_vision_patch_size(vision.patch_size)
    writer.add_vision_embedding_length(vision.hidden_size)
    writer.add_vision_feed_forward_length(vision.intermediate_size)
    writer.add_vision_block_count(vision.depth)
    writer.add_vision_head_count(vision.num_heads)
    writer.add_vision_spatial_merge_size(vision.spatial_merge_size)
    writer.add_vision_image_mean([float(v) for v in vision.image_mean])
    writer.add_vision_image_std([float(v) for v in vision.image_std])


def _flush_to_disk(path: Path) -> None:
    """Make a finished file durable before it is renamed to its final name, so a power cut
    cannot leave a final-named file with missing data (the rename may reach the disk first)."""
    with open(path, "r+b") as handle:
        os.fsync(handle.fileno())


def _sha256(path: Path, on_bytes: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
            on_bytes(len(block))
    return digest.hexdigest()


def _existing_outputs(outdir: Path, names: list[str]) -> list[Path]:
    """Files a new conversion would replace: our targets, the manifest and what it lists."""
    found = [outdir / n for n in names if (outdir / n).exists()]
    manifest = outdir / MANIFEST_NAME
    if manifest.exists():
        found.append(manifest)
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            listed = json.loads(manifest.read_text(encoding="utf-8")).get("files", {})
            for entry in listed.values():
                path = outdir / Path(entry["file"]).name
                if path.exists() and path not in found:
                    found.append(path)
    return found


def refuse_existing_outputs(
    out_dir: Path,
    name: str,
    quant: str | TextQuant,
    mmproj_type: str | MmprojType,
) -> None:
    """OutputExistsError when ``out_dir`` already holds a conversion these files would replace
    (checked again before a download, so 16 GB are not fetched for nothing)."""
    names = list(output_names(_safe_name(name), parse_quant(quant), parse_mmproj_type(mmproj_type)))
    existing = _existing_outputs(out_dir, names) if out_dir.is_dir() else []
    if existing:
        listed = ", ".join(p.name for p in existing)
        raise OutputExistsError(
            f"{out_dir} already holds converted files ({listed}): pass --force to replace them, or choose "
            "another --outdir"
        )


_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_NEARLY_FULL_BYTES = 1 << 20


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:.1f} MB"


def _io_error(err: OSError, out_dir: Path, needed: int | None = None) -> ConversionError:
    """An operating-system error while converting, as a message that names the file and the fix;
    a full disk is said as such, with the room the conversion needs and what was kept."""
    free = shutil.disk_usage(out_dir).free if out_dir.is_dir() else None
    # A short write ("32768 requested and 1136 written") has no errno: a nearly empty disk
    # tells what it was.
    if err.errno in _DISK_FULL_ERRNOS or (
        err.errno is None and free is not None and free < _NEARLY_FULL_BYTES
    ):
        room = f"converting needs about {_size(needed)}" if needed else "no room is left"
        room += f", {_size(free)} is free" if free is not None and needed else ""
        return InsufficientDiskSpaceError(
            f"the disk of {out_dir} is full ({room}): free some space there or choose another "
            "--outdir, then run again; nothing was lost: the checkpoint is untouched and no "
            "half-written model is left"
        )
    return ConversionError(
        f"converting stopped at {err.filename or out_dir}: {err.strerror or err}. Check that the "
        f"checkpoint can be read and that {out_dir} can be written and has free space (or choose "
        "another --outdir), then run again"
    )


class _Reporter:
    """Turns byte counts into ProgressEvents for the caller's callback."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback

    def stage(self, stage: Stage, total: int, unit: str = "B") -> Callable[[int], None]:
        done = 0
        if self.callback is not None:
            self.callback(ProgressEvent(stage, 0, total, unit))

        def advance(amount: int) -> None:
            nonlocal done
            done += amount
            if self.callback is not None:
                self.callback(ProgressEvent(stage, min(done, total), total, unit))

        return advance


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder (and adapter) read and checked: everything but the tensor data."""

    config: ModelConfig
    source: TensorSource
    mapped: list[MappedTensor]
    vocab: Vocab
    adapter: LoraAdapter | None


def read_checkpoint(src_dir: Path, lora_dir: Path | None) -> Checkpoint:
    """Read config, tensor headers, tokenizer and adapter; refuse what cannot be converted.

    Headers only: a shape llama.cpp would reject at load is refused before anything is written.
    """
    config = read_config(src_dir)
    source = TensorSource.from_folder(src_dir)
    mapped = map_checkpoint(source, config)
    check_shapes(mapped, {m.source_name: source.entry(m.source_name).shape for m in mapped}, config)
    vocab = read_vocab(
        src_dir,
        n_rows=config.text.vocab_size,
        config_bos=config.text.bos_token_id,
        config_eos=config.text.eos_token_id,
    )
    adapter = None
    if lora_dir is not None:
        adapter = LoraAdapter(lora_dir)
        adapter.check_against({m.hf_name: source.entry(m.source_name).shape for m in mapped})
        for item in mapped:
            if item.hf_name in adapter.target_weights and item.transform is Transform.SPLIT_TIME:
                raise AdapterError(
                    f"the adapter changes the Conv3d patch embedding ({item.hf_name}), which cannot be "
                    "merged here: merge it with PEFT (merge_and_unload) and convert the merged model"
                )
    return Checkpoint(config, source, mapped, vocab, adapter)


def convert_checkpoint(
    src: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    *,
    lora: str | os.PathLike[str] | None = None,
    quant: str | TextQuant = "Q4_K_M",
    mmproj_type: str | MmprojType = "f16",
    name: str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    via_intermediate: bool = False,
    warn: Callable[[str], None] | None = None,
) -> ConversionResult:
    """Convert a local Qwen2.5-VL checkpoint folder (optionally + a PEFT LoRA) for llama.cpp.

    Writes exactly one text GGUF, one mmproj GGUF (its name contains ``mmproj``) and
    ``manifest.json`` into ``outdir``. Raises a ``ConversionError`` subclass whose message says
    what to fix; nothing complete-looking is left behind on failure.

    K-quants are written straight from the checkpoint by ggml's quantizer with llama.cpp's
    per-tensor types (``convert.kquant``); ``via_intermediate`` writes an F16/BF16 file first and
    runs llama.cpp's quantizer on it instead (twice the disk; the older path).

    ``warn`` hears what the user should know but that stops nothing (less than twice the room
    needed is free); without it, the log does.
    """
    text_quant = parse_quant(quant)
    projector_type = parse_mmproj_type(mmproj_type)
    src_dir = Path(src).expanduser().resolve()
    if not src_dir.is_dir():
        raise ConversionError(
            f"{src_dir} is not a folder: SRC must be a Hugging Face checkpoint folder"
        )
    lora_dir = Path(lora).expanduser().resolve() if lora is not None else None
    # A hub cache snapshot's folder is named by its commit: name the model after its repo then.
    named_by = lora_dir or src_dir
    model_name = _safe_name(name or default_name(named_by) or named_by.name)

    checkpoint = read_checkpoint(src_dir, lora_dir)
    config, source, mapped = checkpoint.config, checkpoint.source, checkpoint.mapped
    vocab, adapter = checkpoint.vocab, checkpoint.adapter

    out_dir = Path(outdir).expanduser().resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _io_error(err, out_dir) from err
    text_name, mmproj_name = output_names(model_name, text_quant, projector_type)
    if not force:
        refuse_existing_outputs(out_dir, model_name, text_quant, projector_type)

    straight = text_quant.is_kquant and not via_intermediate
    text_base = text_quant.spec.direct_type
    file_type = text_quant.spec.file_type
    if text_base is None:  # a K-quant: made from 16-bit values (a file only --via-intermediate)
        text_base = _intermediate_type(mapped, source, adapter)
        file_type = (
            gguf.LlamaFileType.MOSTLY_BF16
            if text_base is GGML.BF16
            else gguf.LlamaFileType.MOSTLY_F16
        )
    text_plan = plan_tensors(mapped, source, Part.TEXT, text_base)
    mmproj_base = projector_type.spec.direct_type
    assert mmproj_base is not None  # every mmproj type is written by gguf-py
    mmproj_plan = plan_tensors(mapped, source, Part.MMPROJ, mmproj_base)
    text_bytes = sum(p.nbytes for p in text_plan)
    mmproj_bytes = sum(p.nbytes for p in mmproj_plan)
    needed = estimate_output_bytes(text_plan, mmproj_plan, text_quant) + DISK_MARGIN_BYTES
    if text_quant.is_kquant and not straight:
        needed += text_bytes  # the 16-bit intermediate sits beside the quantized file
    free = shutil.disk_usage(out_dir).free
    if free < needed:
        raise InsufficientDiskSpaceError(
            f"converting needs about {needed / 1e9:.1f} GB in {out_dir}, but only {free / 1e9:.1f} GB is "
            "free: free some space or choose another --outdir"
        )
    if free < 2 * needed:
        (warn or logger.warning)(
            f"the disk of {out_dir} has {free / 1e9:.1f} GB free and converting needs about "
            f"{needed / 1e9:.1f} GB: it may fill up; free some space there first"
        )

    text_path = out_dir / text_name
    mmproj_path = out_dir / mmproj_name
    partials: list[Path] = []

    def partial(path: Path, suffix: str = ".partial") -> Path:
        tmp = path.with_name(f".{path.name}{suffix}")
        partials.append(tmp)
        return tmp

    reporter = _Reporter(progress)
    producer = TensorProducer(source, adapter)
    try:
        if straight:
            text_tmp = partial(text_path)
            job = StraightJob(
                src=str(src_dir),
                lora=str(lora_dir) if lora_dir else None,
                name=model_name,
                ftype=int(text_quant.spec.file_type),
                out=str(text_tmp),
                header=str(partial(text_path, ".types.partial")),
                threads=threads or os.cpu_count() or 1,
            )
            advance_text: Callable[[int], None] | None = None
            last = 0

            def on_bytes(done: int, total: int) -> None:
                nonlocal advance_text, last
                if advance_text is None:
                    advance_text = reporter.stage(Stage.TEXT, total)
                advance_text(done - last)
                last = done

            quantize_straight(job, on_progress=on_bytes)
        else:
            text_written = partial(
                text_path, ".intermediate.partial" if text_quant.is_kquant else ".partial"
            )
            write_gguf(
                text_written,
                TEXT_ARCH,
                lambda w: add_text_metadata(w, config, vocab, model_name, file_type),
                text_plan,
                producer,
                reporter.stage(Stage.TEXT, text_bytes),
            )
        mmproj_tmp = partial(mmproj_path)
        write_gguf(
            mmproj_tmp,
            MMPROJ_ARCH,
            lambda w: _mmproj_metadata(w, config, model_name, projector_type.spec.file_type),
            mmproj_plan,
            producer,
            reporter.stage(Stage.MMPROJ, mmproj_bytes),
        )
        if text_quant.is_kquant and not straight:
            text_tmp = partial(text_path)
            total = len(text_plan)
            advance = reporter.stage(Stage.QUANTIZE, total, "tensors")
            done_tensors = 0

            def on_tensor(done: int, of: int) -> None:
                nonlocal done_tensors
                advance(done - done_tensors)
                done_tensors = done

            quantize_gguf(
                text_written,
                text_tmp,
                int(text_quant.spec.file_type),
                threads=threads,
                on_progress=on_tensor,
            )
            text_written.unlink()
        elif not straight:
            text_tmp = text_written
        sizes = {"text": text_tmp.stat().st_size, "mmproj": mmproj_tmp.stat().st_size}
        advance = reporter.stage(Stage.CHECKSUM, sizes["text"] + sizes["mmproj"])
        hashes = {"text": _sha256(text_tmp, advance), "mmproj": _sha256(mmproj_tmp, advance)}
        _flush_to_disk(text_tmp)
        _flush_to_disk(mmproj_tmp)
        for old in _existing_outputs(out_dir, [text_name, mmproj_name]):
            old.unlink()
        os.replace(text_tmp, text_path)
        os.replace(mmproj_tmp, mmproj_path)
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": model_name,
            "source": str(src_dir),
            "lora": str(lora_dir) if lora_dir else None,
            # Which model this is (QwenStoryteller and QwenStoryteller2 convert alike).
            "checkpoint": checkpoint_identity(src_dir),
            "lora_checkpoint": checkpoint_identity(lora_dir) if lora_dir else None,
            "quant": text_quant.spec.label,
            "mmproj_type": projector_type.spec.label,
            "files": {
                "text": {"file": text_name, "size": sizes["text"], "sha256": hashes["text"]},
                "mmproj": {
                    "file": mmproj_name,
                    "size": sizes["mmproj"],
                    "sha256": hashes["mmproj"],
                },
            },
            "text_embedding_length": config.text.hidden_size,
            "mmproj_projection_dim": config.text.hidden_size,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "converter_version": __version__,
        }
        manifest_path = out_dir / MANIFEST_NAME
        manifest_tmp = partial(manifest_path)
        manifest_tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _flush_to_disk(manifest_tmp)
        os.replace(manifest_tmp, manifest_path)
    except OSError as err:  # a full disk, a folder made read-only, a shard that went away
        raise _io_error(err, out_dir, needed) from err
    finally:
        for tmp in partials:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return ConversionResult(text_path, mmproj_path, manifest_path, manifest)
