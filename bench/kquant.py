"""Benchmark: K-quants through an F16/BF16 file (today's path) against straight from safetensors.

Side by side in one run, on the same checkpoint and thread count, each conversion in its own
child process (``python -m convert.cli``): wall time, peak RSS (the largest process of the
conversion, quantizer child included), peak disk (the output folder sampled every 50 ms, real
blocks, so the straight path's sparse dry-run header counts as what it costs), whether the two
text GGUFs are byte-identical, and the arithmetic floor: a bare ``ggml_quantize_chunk`` loop
over blocks of the same tensors (same types, same block size) on the same threads, from values
already in memory.

    python bench/kquant.py --shape tiny                 # the committed fixture
    python bench/kquant.py --shape medium --workdir /somewhere/with/space
    python bench/kquant.py --shape 7b --workdir ...     # ~16.6 GB checkpoint, ~25 min on 2 cores

Shapes other than ``tiny`` are written by bench/qwen25vl_checkpoint.py (random bf16, numpy).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.append(str(Path(__file__).resolve().parent))

from qwen25vl_checkpoint import QWEN25VL_7B, Shapes, write_checkpoint  # noqa: E402

TINY = REPO_ROOT / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint"
_SMALL_VISION = {
    "vision_hidden": 256,
    "vision_ffn": 512,
    "vision_depth": 4,
    "vision_heads": 4,
    "fullatt_blocks": (1, 3),
}
SHAPES = {
    # Qwen2.5-1.5B-like text (28 layers, the real vocabulary), a small vision tower: ~3.6 GB bf16.
    "medium": Shapes(
        hidden=1536,
        ffn=8960,
        layers=28,
        heads=12,
        kv_heads=2,
        vocab=152064,
        mrope_section=(16, 24, 24),
        max_positions=32768,
        **_SMALL_VISION,  # type: ignore[arg-type]
    ),
    "7b": QWEN25VL_7B,
}

FLOOR = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
from gguf import GGMLQuantizationType as GGML
from convert import kquant
from convert.ggml_lib import quantize_rows
from convert.pipeline import TEXT_ARCH, add_text_metadata, plan_tensors, read_checkpoint
from convert.tensor_map import Part

src, ftype, threads, scratch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
checkpoint = read_checkpoint(Path(src), None)
plan = plan_tensors(checkpoint.mapped, checkpoint.source, Part.TEXT, GGML.BF16)
kquant.write_header_only(
    scratch, TEXT_ARCH,
    lambda w: add_text_metadata(w, checkpoint.config, checkpoint.vocab, "floor", 32), plan)
types = kquant.dry_run_types(scratch, ftype)
scratch.unlink()
values = np.random.default_rng(0).standard_normal(kquant.BLOCK_ELEMENTS, dtype=np.float32)
jobs = []
for p in plan:
    n_per_row = p.shape[-1]
    rows = p.n_elements // n_per_row
    step = max(1, kquant.BLOCK_ELEMENTS // n_per_row)
    for start in range(0, rows, step):
        jobs.append((types[p.name], min(step, rows - start), n_per_row))
def run(job):
    kind, rows, n_per_row = job
    return quantize_rows(kind, values[: rows * n_per_row].reshape(rows, n_per_row)).nbytes
started = time.perf_counter()
with ThreadPoolExecutor(threads) as pool:
    total = sum(pool.map(run, jobs))
print(json.dumps({"seconds": time.perf_counter() - started, "bytes": total,
                  "parameters": sum(p.n_elements for p in plan)}))
"""


def _allocated(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a partial file renamed meanwhile
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def measure(command: list[str], watch: Path) -> dict:
    """Wall seconds, peak RSS of the process tree's largest process, peak bytes in ``watch``."""
    peak_disk = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_disk
        while not stop.wait(0.05):
            peak_disk = max(peak_disk, _allocated(watch))

    sampler = threading.Thread(target=sample, daemon=True)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with tempfile.TemporaryFile() as log:
        sampler.start()
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RuntimeError(f"{command[2:5]} failed:\n{log.read().decode()[-3000:]}")
        log.seek(0)
        output = log.read().decode()
    return {"seconds": seconds, "rss": usage.ru_maxrss * 1024, "disk": peak_disk, "log": output}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["tiny", *SHAPES], default="tiny")
    parser.add_argument("--quant", default="Q4_K_M", choices=["Q4_K_M", "Q5_K_M", "Q6_K"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, help="checkpoint and outputs (default: a temp dir)")
    parser.add_argument("--make-checkpoint", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_checkpoint:
        shape, folder = args.make_checkpoint
        write_checkpoint(Path(folder), SHAPES[shape])
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-kquant-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.shape == "tiny":
        src = TINY
    else:
        src = workdir / f"checkpoint-{args.shape}"
        # in a child: this process must stay small for the children's peak RSS to mean anything
        subprocess.run(
            [sys.executable, __file__, "--make-checkpoint", args.shape, str(src)], check=True
        )
    checkpoint_bytes = sum(p.stat().st_size for p in src.glob("*.safetensors"))
    print(f"checkpoint: {args.shape}, {checkpoint_bytes / 1e9:.3f} GB bf16 in {src}", flush=True)

    rows = {}
    files = {}
    for label, extra in (
        ("today: F16/BF16 file + llama.cpp", ["--via-intermediate"]),
        ("straight", []),
    ):
        out = workdir / ("out-" + ("today" if extra else "straight"))
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        command = [sys.executable, "-m", "convert.cli", str(src), "--outdir", str(out)]
        command += ["--quant", args.quant, "--name", "bench", "--threads", str(args.threads)]
        rows[label] = measure(command + extra, out)
        files[label] = out / f"bench-{args.quant}.gguf"
        print(f"{label}: {rows[label]['seconds']:.1f} s", flush=True)
    ftype = {"Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}[args.quant]
    floor = subprocess.run(
        [
            sys.executable,
            "-c",
            FLOOR,
            str(src),
            str(ftype),
            str(args.threads),
            str(workdir / "floor.gguf"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )
    floor_result = json.loads(floor.stdout.strip().splitlines()[-1])

    hashes = {label: sha256(path) for label, path in files.items()}
    identical = len(set(hashes.values())) == 1
    result_bytes = (
        files["straight"].stat().st_size
        + next((workdir / "out-straight").glob("mmproj-*.gguf")).stat().st_size
    )
    print()
    print(
        f"machine: {os.cpu_count()} cores, {args.threads} threads, shape {args.shape}, {args.quant}"
    )
    print(
        f"{'path':36s} {'wall s':>8s} {'peak RSS MB':>12s} {'peak disk GB':>13s} {'/(ckpt+result)':>15s}"
    )
    for label, row in rows.items():
        ratio = (checkpoint_bytes + row["disk"]) / (checkpoint_bytes + result_bytes)
        print(
            f"{label:36s} {row['seconds']:8.1f} {row['rss'] / 1e6:12.0f} "
            f"{(checkpoint_bytes + row['disk']) / 1e9:13.3f} {ratio:15.3f}"
        )
    params = floor_result["parameters"]
    print(
        f"{'floor: bare ggml_quantize_chunk':36s} {floor_result['seconds']:8.1f}   "
        f"({params / 1e6:.0f} M parameters, {params / floor_result['seconds'] / args.threads / 1e6:.1f} M/s/thread)"
    )
    today, straight = rows["today: F16/BF16 file + llama.cpp"], rows["straight"]
    print(f"straight / today wall time: {straight['seconds'] / today['seconds']:.2f}")
    print(f"straight / floor wall time: {straight['seconds'] / floor_result['seconds']:.2f}")
    print(f"text GGUF byte-identical: {identical} ({hashes['straight'][:16]}…)")
    if not args.workdir:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
