"""Decoding speed against the memory-bandwidth ceiling, side by side in one run (issue 14).

    python bench/decode_ceiling.py WORKDIR [--workers app app@native llama] [--native-lib DIR]
                                   [--rounds 30] [--tokens 8]

WORKDIR is bench/real_scale.py's folder: its 7B-shaped Q4_K_M model. The ceiling is the bytes of
weights one token reads (all but the embedding table) over this machine's read bandwidth
(numpy, every thread, 2 GiB).

On a shared machine other work moves single readings by up to 2x within minutes, so the
decoders are compared in lockstep: every worker (``bench/decode_worker.py``: ``app``,
``llama``, ``llama-1t``, ``bandwidth``) loads once and stays loaded, then each round
runs a short burst on each of them in turn, bandwidth included. Slow drifts weigh on all alike;
the table gives each worker's tokens/s over all its bursts and the share of the ceiling from
the median bandwidth reading. A worker named ``NAME@native`` loads another build of the same
llama.cpp (``--native-lib``: its libllama/libggml/libmtmd folder, e.g. a ``GGML_NATIVE=ON``
build, which is what ``pip install .`` compiles on this machine; CI and the bundles use the
portable AVX2 wheel). Memory bounds the workers: each 7B decoder holds about 6.3 GiB.
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

from real_scale import describe_machine  # noqa: E402
from real_scale_engine import weights_read_per_token  # noqa: E402

LABELS = {
    "app": "the app (LlamaCppBackend, token by token)",
    "llama": "llama.cpp alone",
    "llama-1t": "llama.cpp alone, 1 thread",
}


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    facts: dict = field(default_factory=dict)
    tokens: int = 0
    seconds: float = 0.0
    rates: list[float] = field(default_factory=list)

    def ask(self, count: int) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"worker {self.name} died (see its log)")
        return json.loads(line)

    def label(self) -> str:
        kind, _, build = self.name.partition("@")
        return f"{LABELS.get(kind, kind)}, {build or 'wheel'}"


def start(name: str, work: Path, threads: int, native: Path | None, logs: Path) -> Worker:
    kind, _, build = name.partition("@")
    env = dict(os.environ)
    if build == "native":
        if native is None:
            raise SystemExit(f"{name} needs --native-lib")
        env["LLAMA_CPP_LIB_PATH"] = env["MTMD_CPP_LIB"] = str(native)
    command = [sys.executable, str(BENCH / "decode_worker.py"), kind, str(work)]
    command += ["--threads", str(threads)]
    log = (logs / f"{name.replace('@', '-')}.log").open("w")
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or "{}")
    if not ready.get("ready"):
        raise SystemExit(f"worker {name} did not start (see {log.name})")
    return Worker(name, process, facts=ready)


def table(workers: list[Worker], bandwidths: list[float], weights: int, machine: str) -> str:
    bandwidth = statistics.median(bandwidths)
    ceiling = bandwidth / weights
    lines = [
        f"Decoding vs the bandwidth ceiling — {machine}",
        f"weights read per token {weights / 1e9:.2f} GB; read bandwidth "
        f"{min(bandwidths) / 1e9:.1f}-{max(bandwidths) / 1e9:.1f} GB/s, median "
        f"{bandwidth / 1e9:.1f} over {len(bandwidths)} readings: ceiling {ceiling:.2f} tok/s",
        "",
        "| decoder | tok/s (all bursts) | bursts: min-max tok/s | share of the ceiling | notes |",
        "|---|---|---|---|---|",
    ]
    for worker in workers:
        rate = worker.tokens / worker.seconds
        notes = ["AVX-512"] if worker.facts.get("avx512") else []
        lines.append(
            f"| {worker.label()} | {rate:.2f} | {min(worker.rates):.2f}-{max(worker.rates):.2f} "
            f"| {rate / ceiling:.0%} | {', '.join(notes)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="bench/real_scale.py's folder")
    parser.add_argument("--workers", nargs="+", default=["app", "llama"])
    parser.add_argument("--native-lib", type=Path, help="another llama.cpp build's library folder")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=8, help="tokens per burst")
    parser.add_argument("--note", default="", help="appended to the machine line")
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    if not (work / "q4km" / "manifest.json").is_file():
        raise SystemExit(f"no converted model in {work / 'q4km'}: run bench/real_scale.py {work}")
    manifest = json.loads((work / "q4km" / "manifest.json").read_text())
    weights = weights_read_per_token(work / "q4km" / manifest["files"]["text"]["file"])
    logs = work / "decode-logs"
    logs.mkdir(exist_ok=True)
    bandwidth = start("bandwidth", work, args.threads, None, logs)
    workers = []
    for name in args.workers:  # one at a time: loading two at once would time the loading
        workers.append(start(name, work, args.threads, args.native_lib, logs))
        print(f"[{time.strftime('%H:%M:%S')}] {name} loaded", file=sys.stderr, flush=True)
    bandwidths = []
    try:
        bandwidth.ask(1)  # a warm-up round, not counted: first touches after loading
        for worker in workers:
            worker.ask(args.tokens)
        for round_ in range(args.rounds):
            # Rotate who goes first, so that none always follows the bandwidth reading.
            order = workers[round_ % len(workers) :] + workers[: round_ % len(workers)]
            bandwidths.append(bandwidth.ask(1)["read_bytes_per_s"])
            for worker in order:
                burst = worker.ask(args.tokens)
                worker.tokens += burst["tokens"]
                worker.seconds += burst["seconds"]
                worker.rates.append(burst["tokens"] / burst["seconds"])
            print(
                f"[{time.strftime('%H:%M:%S')}] round {round_ + 1}: "
                + ", ".join(f"{w.name} {w.rates[-1]:.2f}" for w in workers)
                + f", bandwidth {bandwidths[-1] / 1e9:.1f} GB/s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for worker in [bandwidth, *workers]:
            if worker.process.stdin is not None:
                worker.process.stdin.write("\n")
                worker.process.stdin.close()
            worker.process.wait(timeout=60)
    machine = describe_machine(args.threads) + (f"; {args.note}" if args.note else "")
    print(table(workers, bandwidths, weights, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
