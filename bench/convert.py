"""Benchmark: storyteller-convert versus llama.cpp's convert_hf_to_gguf.py on the same checkpoint.

Generates a synthetic Qwen2.5-VL checkpoint (bf16, a few hundred MB, legacy tensor names, the
tiny fixture's tokenizer; bench/qwen25vl_checkpoint.py), converts it to F16 text + F16 mmproj with both converters, each in its
own child process, and prints wall time and peak RSS side by side.

llama.cpp's converter is the one inside the llama-cpp-python 0.3.36 sdist
(``pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`` and unpack); it needs torch
and transformers, so run this from an environment that has them (e.g. /work/venv-fixtures with
gguf + tqdm installed), or the llama.cpp column is skipped:

    /work/venv-fixtures/bin/python bench/convert.py --llama-cpp /tmp/lcp-sdist/llama_cpp_python-0.3.36/vendor/llama.cpp

llama.cpp writes the text model and the mmproj in two runs (``--mmproj``); its time is their sum
and its peak RSS the larger of the two. Its converter identifies BPE pre-tokenizers by hashing
known tokenizers and refuses the synthetic one, so the wrapper answers "qwen2" for it (what the
real Qwen tokenizer hashes to); nothing else of it is changed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named convert.py: keep its folder off sys.path so ``import convert`` finds the package.
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO_ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # after the repo: for the generator only

from qwen25vl_checkpoint import Shapes, write_checkpoint  # noqa: E402

# A few hundred MB: big enough to time, small enough to convert twice per converter.
SHAPES = Shapes(
    hidden=1024,
    ffn=4096,
    layers=10,
    heads=8,
    kv_heads=2,
    vocab=32768,
    vision_hidden=256,
    vision_ffn=512,
    vision_depth=4,
    vision_heads=4,
    fullatt_blocks=(1, 3),
    mrope_section=(16, 24, 24),
    max_positions=8192,
)

_LLAMA_CPP_WRAPPER = """
import runpy, sys
root = sys.argv[1]
sys.path.insert(0, root)
sys.argv = [root + "/convert_hf_to_gguf.py"] + sys.argv[2:]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
runpy.run_path(root + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def make_checkpoint(folder: Path) -> int:
    """Write the synthetic checkpoint (two shards); returns its weight bytes."""
    return write_checkpoint(folder, SHAPES, shard_bytes=400 * 10**6)


def run_measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of a child process; raises if it fails."""
    # stderr goes to a file, not a pipe: nothing reads a pipe until the child exits, and a child
    # that logs more than the pipe holds (llama.cpp's converter logs every tensor) would block.
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            log.seek(0)
            stderr = log.read().decode(errors="replace")
            raise RuntimeError(f"{command[:3]} failed ({child.returncode}):\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--llama-cpp", type=Path, help="the vendored llama.cpp folder of the unpacked sdist"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where to put the checkpoint and outputs (default: a temp dir)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per converter; the best time is reported"
    )
    parser.add_argument("--make-checkpoint", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_checkpoint:
        make_checkpoint(args.make_checkpoint)
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-convert-"))
    src = workdir / "synthetic-qwen25vl"
    # Generated in a child: Linux carries a parent's RSS high-water mark into children it execs,
    # so this process must stay small for the children's peak RSS to mean anything.
    subprocess.run([sys.executable, __file__, "--make-checkpoint", str(src)], check=True)
    size = sum(p.stat().st_size for p in src.glob("*.safetensors"))
    print(f"synthetic checkpoint: {size / 1e6:.0f} MB bf16 in {src}")

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    rows = []
    ours = []
    for n in range(args.repeat):
        out = workdir / f"ours-{n}"
        command = [
            sys.executable,
            "-m",
            "convert.cli",
            str(src),
            "--outdir",
            str(out),
            "--quant",
            "F16",
        ]
        ours.append(
            run_measured([*command, "--mmproj-type", "f16", "--name", "synthetic", "--force"], env)
        )
    rows.append(("storyteller-convert", min(t for t, _ in ours), max(r for _, r in ours)))

    have_torch = importlib.util.find_spec("torch") is not None and importlib.util.find_spec(
        "transformers"
    )
    if args.llama_cpp and have_torch:
        theirs = []
        for n in range(args.repeat):
            out = workdir / f"llama-{n}"
            out.mkdir(exist_ok=True)
            base = [
                sys.executable,
                "-c",
                _LLAMA_CPP_WRAPPER,
                str(args.llama_cpp.resolve()),
                str(src),
            ]
            text = run_measured(
                [*base, "--outtype", "f16", "--outfile", str(out / "text-f16.gguf")]
            )
            mmproj = run_measured(
                [*base, "--outtype", "f16", "--mmproj", "--outfile", str(out / "mmproj-f16.gguf")]
            )
            theirs.append((text[0] + mmproj[0], max(text[1], mmproj[1])))
        rows.append(
            (
                "llama.cpp convert_hf_to_gguf.py",
                min(t for t, _ in theirs),
                max(r for _, r in theirs),
            )
        )
    else:
        reason = (
            "no --llama-cpp folder given"
            if not args.llama_cpp
            else "torch/transformers not installed"
        )
        print(f"llama.cpp column skipped: {reason}")

    print()
    print(f"{'converter (F16 text + F16 mmproj)':36s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for label, seconds, rss in rows:
        print(f"{label:36s} {seconds:8.2f} {rss / 1e6:12.0f}")
    if not args.workdir:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
