"""Decoding speed against the memory-bandwidth ceiling, side by side in one run (issue 14).

    python bench/decode_ceiling.py WORKDIR [--native-lib DIR] [--rounds 2] [--tokens 48]

WORKDIR is bench/real_scale.py's folder: its 7B-shaped Q4_K_M model. The ceiling is the bytes of
weights one token reads (all but the embedding table) over this machine's read bandwidth
(numpy, every thread, 2 GiB). Every configuration runs in a process of its own, each right
after a bandwidth measurement, round after round, so that other work on the machine weighs on
all of them alike:

- ``llama.cpp``: a ctypes loop of one-token ``llama_decode`` calls reading the logits back, the
  app's context settings, after a 32-token prompt; threads, repacked weights (llama.cpp's CPU
  ``extra`` buffers) and huge pages for its heap (glibc's ``hugetlb`` tunable; the kernel gives
  them only on request, ``madvise``) vary;
- ``app``: the app's own decoding (``LlamaCppBackend``, one small photo, free format, token by
  token: what the ceiling bounds), which adds sampling, UTF-8 and events on top; with its
  loaded weights on huge pages (``engine/huge_pages.py``, the default) and without (as before);
- ``--native-lib DIR``: the same again with another build of the same llama.cpp (its
  libllama/libggml/libmtmd), e.g. a ``GGML_NATIVE=ON`` one, which is what ``pip install .``
  compiles on this machine; the installed wheel of CI and the bundles is portable (AVX2).

Prints one table: tokens/s (mean over ``--tokens``) by round, and the median's share of the
ceiling from the median bandwidth (other machines' traffic moves single bandwidth readings by
up to 2x, so one reading per round would be no fairer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from real_scale import bandwidth_command, describe_machine  # noqa: E402
from real_scale_engine import weights_read_per_token  # noqa: E402

_LLAMA_CHILD = """
import ctypes, json, sys, time
import llama_cpp
path, threads, repack, tokens = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
llama_cpp.llama_backend_init()
model_params = llama_cpp.llama_model_default_params()
model_params.n_gpu_layers = 0
model_params.use_mmap = False  # as the app loads on a CPU
model_params.use_extra_bufts = repack
model = llama_cpp.llama_model_load_from_file(path.encode(), model_params)
params = llama_cpp.llama_context_default_params()
params.n_ctx, params.n_batch, params.n_ubatch = 4096, 512, 512
params.n_threads = params.n_threads_batch = threads
params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # the app's CPU setting
ctx = llama_cpp.llama_init_from_model(model, params)

def decode(batch):
    array = (llama_cpp.llama_token * len(batch))(*batch)
    assert llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(array, len(batch))) == 0
    llama_cpp.llama_get_logits_ith(ctx, -1)

decode(list(range(100, 132)))
seconds = []
for i in range(tokens):
    started = time.perf_counter()
    decode([200 + i])
    seconds.append(time.perf_counter() - started)
huge = 0
with open("/proc/self/smaps_rollup") as rollup:
    for line in rollup:
        if line.startswith("AnonHugePages:"):
            huge = int(line.split()[1]) * 1024
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"tokens_per_s": tokens / sum(seconds), "huge_page_bytes": huge,
                  "avx512": "AVX512 = 1" in info}))
"""

HUGE_PAGES = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


@dataclass
class Config:
    label: str
    kind: str  # "llama" or "app"
    threads: int = 2
    repack: bool = True
    huge_pages: bool = True  # app only (llama: the glibc tunable in env)
    env: dict[str, str] = field(default_factory=dict)
    rates: list[float] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)


def configs(threads: int, native: Path | None) -> list[Config]:
    builds = [("wheel", {})]
    if native is not None:
        lib = str(native)
        builds.append(("native", {"LLAMA_CPP_LIB_PATH": lib, "MTMD_CPP_LIB": lib}))
    found = [
        Config("llama.cpp, wheel, 1 thread", "llama", threads=1),
        Config("llama.cpp, wheel, weights not repacked", "llama", threads=threads, repack=False),
    ]
    for build, env in builds:
        found += [
            Config(f"llama.cpp, {build}", "llama", threads=threads, env=env),
            Config(
                f"llama.cpp, {build}, huge pages",
                "llama",
                threads=threads,
                env={**env, **HUGE_PAGES},
            ),
            Config(
                f"app, {build}, 4 KiB pages (before)",
                "app",
                threads=threads,
                huge_pages=False,
                env=env,
            ),
            Config(f"app, {build}", "app", threads=threads, env=env),
        ]
    return found


def run_child(command: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(config: Config, work: Path, model: Path, tokens: int) -> dict:
    if config.kind == "llama":
        command = [sys.executable, "-c", _LLAMA_CHILD, str(model), str(config.threads)]
        command += ["1" if config.repack else "0", str(tokens)]
    else:
        command = [sys.executable, str(BENCH / "real_scale_engine.py"), "decode", str(work)]
        command += ["--threads", str(config.threads), "--tokens", str(tokens), "--no-speculation"]
        command += [] if config.huge_pages else ["--no-huge-pages"]
    return run_child(command, config.env)


def table(rows: list[Config], bandwidths: list[float], weights: int, machine: str) -> str:
    bandwidth = statistics.median(bandwidths)
    ceiling = bandwidth / weights
    lines = [
        f"Decoding vs the bandwidth ceiling — {machine}",
        f"weights read per token {weights / 1e9:.2f} GB; read bandwidth "
        f"{min(bandwidths) / 1e9:.1f}-{max(bandwidths) / 1e9:.1f} GB/s, median "
        f"{bandwidth / 1e9:.1f}: ceiling {ceiling:.2f} tok/s",
        "",
        "| configuration | tok/s by round | median | share of the ceiling | notes |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        rates = ", ".join(f"{r:.2f}" for r in row.rates)
        median = statistics.median(row.rates)
        lines.append(
            f"| {row.label} | {rates} | {median:.2f} | {median / ceiling:.0%} "
            f"| {', '.join(sorted(row.notes))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="bench/real_scale.py's folder")
    parser.add_argument("--native-lib", type=Path, help="another llama.cpp build's library folder")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--note", default="", help="appended to the machine line")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    manifest = json.loads((work / "q4km" / "manifest.json").read_text())
    model = work / "q4km" / manifest["files"]["text"]["file"]
    weights = weights_read_per_token(model)
    rows = configs(args.threads, args.native_lib)
    bandwidths = []
    for round_ in range(1, args.rounds + 1):
        for row in rows:
            bandwidth = run_child(bandwidth_command(args.threads), {})["read_bytes_per_s"]
            bandwidths.append(bandwidth)
            result = measure(row, work, model, args.tokens)
            row.rates.append(result["tokens_per_s"])
            if result.get("huge_page_bytes"):
                row.notes.add(f"{result['huge_page_bytes'] / 2**30:.1f} GiB in huge pages")
            if result.get("avx512"):
                row.notes.add("AVX-512")
            print(
                f"[{time.strftime('%H:%M:%S')}] round {round_}: {row.label}: "
                f"{result['tokens_per_s']:.2f} tok/s",
                file=sys.stderr,
                flush=True,
            )
    machine = describe_machine(args.threads) + (f"; {args.note}" if args.note else "")
    print(table(rows, bandwidths, weights, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
