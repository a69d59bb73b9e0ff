"""Benchmark: what each --quant costs in agreement with F32, and what it saves in file size.

Converts one checkpoint (default: the tiny fixture + its LoRA) at every text type (mmproj F16),
then runs one fixed image prompt through each in llama.cpp: the prompt's last position plus a
fixed continuation, teacher-forced, so every type is scored on the same positions. Prints file
size, top-1 agreement with F32 and the mean KL divergence KL(F32 || quant) in nats.

    .venv/bin/python bench/quant_quality.py                      # tiny fixture (seconds)
    .venv/bin/python bench/quant_quality.py --src ~/models/QwenStoryteller-hf --image photo.png

On the tiny random model the numbers show the mechanics, not the 7B's quality: random weights
spread information evenly and quantize worse than trained ones.

With ``--compare A.gguf B.gguf --reference REF`` it instead tells the stories of a reference set
(README, "Measuring quality") with each of two converted text models (each with the mmproj
beside it) and prints the StoryReasoning metric table side by side. The outputs stay in
``--runs DIR`` (one folder per model), so a stopped comparison continues where it stopped:

    .venv/bin/python bench/quant_quality.py --compare Q8_0/model.gguf Q4_K_M/model.gguf \
        --reference StoryReasoning/data/test-00000-of-00001.parquet --limit 50 --seed 1 \
        --runs ~/eval-runs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(1, str(REPO_ROOT / "tests" / "convert"))

import numpy as np  # noqa: E402
from llama_probe import run_probe  # noqa: E402

from convert import TextQuant, convert_checkpoint  # noqa: E402

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "tiny-qwen25vl"
CONTINUATION = (
    "<think>\n## Image 1\n\n### Characters\n| Character ID | Name | Description |\n|---|---|---|\n"
    "| char1 | Maya | Girl in a yellow raincoat |\n</think>\n<gdi image1>The girl walked to the harbour."
)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def compare_stories(args: argparse.Namespace) -> int:
    """Tell the reference stories with both models, then print their metric tables side by side."""
    import contextlib
    import io

    from desktop_app.cli import main as storyteller
    from desktop_app.cli.eval_cmd import format_table

    runs = args.runs or Path(tempfile.mkdtemp(prefix="bench-stories-"))
    columns = []
    for index, model in enumerate(args.compare, start=1):
        # Two quantizations of one model usually share a file name: number the run folders.
        run_dir = runs / f"{index}-{model.parent.name}-{model.stem}"
        command = ["eval", str(run_dir), "--reference", str(args.reference), "--generate"]
        command += ["--model", str(model), "--json", "--max-tokens", str(args.max_tokens)]
        command += ["--seed", str(args.seed)]
        if args.limit:
            command += ["--limit", str(args.limit)]
        print(f"{model}: telling into {run_dir}", file=sys.stderr)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = storyteller(command)
        if code != 0:
            return code
        data = json.loads(out.getvalue())
        columns.append((f"{model.parent.name}/{model.name}", list(data["metrics"].items())))
    print(f"{data['stories_scored']} stories of {args.reference}; {data['meteor']}")
    print(format_table([(f"[{i}]", rows) for i, (_name, rows) in enumerate(columns, 1)]))
    for i, (name, _rows) in enumerate(columns, 1):
        print(f"[{i}] {name}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=FIXTURE / "checkpoint")
    parser.add_argument("--lora", type=Path, default=None)
    parser.add_argument("--image", type=Path, default=FIXTURE / "image.png")
    parser.add_argument("--workdir", type=Path, default=None)
    stories = parser.add_argument_group("story metrics of two models (--compare)")
    stories.add_argument("--compare", type=Path, nargs=2, metavar="GGUF", help="two text GGUFs")
    stories.add_argument("--reference", type=Path, metavar="REF", help="reference set")
    stories.add_argument("--runs", type=Path, metavar="DIR", help="keep the outputs here")
    stories.add_argument("--limit", type=int, metavar="N", help="first N stories only")
    stories.add_argument("--max-tokens", type=int, default=4096, metavar="N")
    stories.add_argument("--seed", type=int, default=1, metavar="N")
    args = parser.parse_args()
    if args.compare:
        if args.reference is None:
            parser.error("--compare needs --reference")
        return compare_stories(args)
    lora = args.lora if args.lora or args.src != FIXTURE / "checkpoint" else FIXTURE / "lora"

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-quant-"))
    results = {}
    for quant in TextQuant:
        results[quant.spec.label] = convert_checkpoint(
            args.src,
            workdir / quant.spec.label,
            lora=lora,
            quant=quant,
            mmproj_type="f16",
            force=True,
        )
    f32 = results["F32"]
    [tokenized] = run_probe(
        [{"kind": "tokenize", "model": str(f32.text_gguf), "text": CONTINUATION}],
        workdir / "probe-tok",
    )
    continuation = tokenized["ids"].tolist()
    jobs = [
        {
            "kind": "image_logits",
            "model": str(r.text_gguf),
            "mmproj": str(r.mmproj_gguf),
            "image": str(args.image),
            "before": "<|im_start|>user\nCreate a story based on these images.",
            "after": "<|im_end|>\n<|im_start|>assistant\n",
            "continuation": continuation,
        }
        for r in results.values()
    ]
    logits = {
        label: out["logits"]
        for label, out in zip(results, run_probe(jobs, workdir / "probe"), strict=True)
    }
    reference = log_softmax(logits["F32"].astype(np.float64))
    print(
        f"{len(continuation) + 1} scored positions (image prompt + fixed continuation); mmproj F16"
    )
    print(f"{'quant':8s} {'text MB':>9s} {'x F32':>6s} {'top-1 agree':>12s} {'KL(F32||q)':>11s}")
    f32_size = f32.text_gguf.stat().st_size
    for label, result in results.items():
        size = result.text_gguf.stat().st_size
        scored = log_softmax(logits[label].astype(np.float64))
        agree = float((scored.argmax(-1) == reference.argmax(-1)).mean())
        kl = float((np.exp(reference) * (reference - scored)).sum(-1).mean())
        print(f"{label:8s} {size / 1e6:9.2f} {size / f32_size:6.2f} {agree:12.3f} {kl:11.2e}")
    if args.workdir:
        print(json.dumps({"workdir": str(workdir)}))
    else:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
