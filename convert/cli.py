"""``storyteller-convert``: the thin command-line shell around ``convert_checkpoint``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convert import __version__
from convert.errors import ConversionError
from convert.hub import fetch_checkpoint, parse_repo_spec
from convert.pipeline import (
    ConversionResult,
    ProgressEvent,
    Stage,
    convert_checkpoint,
    estimate_from_weights,
    refuse_existing_outputs,
)
from convert.quant_types import MmprojType, TextQuant


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyteller-convert",
        description=(
            "Convert a Hugging Face Qwen2.5-VL checkpoint (QwenStoryteller, or a base model plus "
            "a PEFT LoRA adapter) into the text GGUF and mmproj GGUF that Storyteller runs. SRC is "
            "a local folder, or a Hub repository (owner/name[@revision]) that is downloaded into "
            "the Hugging Face cache first."
        ),
    )
    parser.add_argument(
        "src",
        metavar="SRC",
        help=(
            "checkpoint folder (config.json, *.safetensors, tokenizer.json), or a Hub repository "
            "such as daniel3303/QwenStoryteller2 (an existing local path always wins)"
        ),
    )
    parser.add_argument(
        "--lora", metavar="ADAPTER_DIR", help="PEFT LoRA adapter folder to merge (float32)"
    )
    parser.add_argument(
        "--outdir", required=True, help="folder for the two GGUF files and manifest.json"
    )
    parser.add_argument(
        "--quant",
        default="Q4_K_M",
        type=str.upper,
        choices=[q.spec.label for q in TextQuant],
        help="text model type (default: Q4_K_M)",
    )
    parser.add_argument(
        "--mmproj-type",
        default="f16",
        type=str.lower,
        choices=[t.spec.label for t in MmprojType],
        help="vision projector type (default: f16)",
    )
    parser.add_argument(
        "--name", help="model name used in file names (default: the SRC or adapter folder name)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace converted files already in --outdir"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for K-quantization (default: all)"
    )
    parser.add_argument(
        "--via-intermediate",
        action="store_true",
        help=(
            "K-quants: write an F16/BF16 file first and run llama.cpp's quantizer on it (the older "
            "path: about twice the disk; the default quantizes straight from the checkpoint)"
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


class _Bars:
    """One tqdm bar per stage on a terminal; nothing when stderr is not one."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[Stage, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(event.stage)
        if bar is None:
            for other in self.bars.values():
                other.close()
            bytes_unit = event.unit == "B"
            bar = tqdm(
                total=event.total,
                desc=event.stage.value,
                unit=event.unit,
                unit_scale=bytes_unit,
                unit_divisor=1024 if bytes_unit else 1000,
                file=sys.stderr,
                leave=True,
            )
            self.bars[event.stage] = bar
        bar.update(event.done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{n_bytes} B"


def _summary(result: ConversionResult, seconds: float) -> str:
    files = result.manifest["files"]
    return (
        f"converted {result.manifest['name']} in {seconds:.1f} s: {result.text_gguf} "
        f"({_size(files['text']['size'])}, {result.manifest['quant']}) + {result.mmproj_gguf.name} "
        f"({_size(files['mmproj']['size'])}, {result.manifest['mmproj_type']}); manifest: "
        f"{result.manifest_path.name}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; exit 0 on success, 1 with a message on failure, 130 when interrupted."""
    args = build_parser().parse_args(argv)
    spec = None
    bars = _Bars(sys.stderr.isatty())
    started = time.monotonic()
    try:
        src = args.src
        spec = parse_repo_spec(args.src)
        if spec is not None:
            if not args.force:
                named = args.name or Path(args.lora or spec.repo).name
                refuse_existing_outputs(
                    Path(args.outdir).expanduser(), named, args.quant, args.mmproj_type
                )
            fetched = fetch_checkpoint(
                spec,
                output_dir=Path(args.outdir).expanduser().resolve(),
                output_bytes=lambda weight_bytes: estimate_from_weights(weight_bytes, args.quant),
                on_revision=lambda commit: print(
                    f"fetching {spec.repo} at revision {commit}", flush=True
                ),
                progress=lambda done, total: bars(ProgressEvent(Stage.DOWNLOAD, done, total, "B")),
            )
            src = str(fetched.folder)
        result = convert_checkpoint(
            src,
            args.outdir,
            lora=args.lora,
            quant=args.quant,
            mmproj_type=args.mmproj_type,
            name=args.name,
            force=args.force,
            progress=bars,
            threads=args.threads,
            via_intermediate=args.via_intermediate,
        )
    except ConversionError as err:
        bars.close()
        print(f"storyteller-convert: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bars.close()
        kept = (
            "; what was downloaded is kept, and the same command resumes"
            if spec is not None
            else ""
        )
        print(f"storyteller-convert: interrupted; no output was kept{kept}", file=sys.stderr)
        return 130
    bars.close()
    print(_summary(result, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
