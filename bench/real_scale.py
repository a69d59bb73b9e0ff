"""Benchmark at real scale: a Qwen2.5-VL-7B-shaped checkpoint, converted and run on this machine.

    python bench/real_scale.py /work/scratch-7b [--threads N] [--redo STEP ...]

Steps (each in its own child process, so its wall time and peak RSS are its own; results go to
``WORKDIR/results.json`` and a step whose result is there is skipped, so the script can be
re-run to redo only some steps):

- ``checkpoint``: random bf16 weights with the 7B shapes (bench/qwen25vl_checkpoint.py, 16.6 GB);
- ``convert_f16`` / ``convert_q4km``: ``storyteller-convert`` to F16 and to Q4_K_M (+ F16 mmproj):
  wall time, peak RSS (anonymous and file-backed, sampled, and the kernel's high-water mark),
  the most disk the output folder held, and the files' size;
- ``bandwidth``: this machine's memory read bandwidth (numpy, all threads, a buffer far larger
  than the caches), the ceiling for decoding: weights read per token / bandwidth;
- ``encode``: load Q4_K_M + mmproj, encode one photo at each detail (256/512/1024 tokens);
- ``tell``: a 5-photo album at low detail (the training size) with 256 new tokens: cold time to
  first token, prefill and decode tokens/s, then the same Generate again (prompt reused from
  memory) and from a fresh process (prompt reused from disk); peak RSS against the app's estimate.

Weights are random, so the text is noise: only time and memory mean anything. It prints one
table (Markdown, for the README) with the machine and its load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
STEPS = ("checkpoint", "convert_f16", "convert_q4km", "bandwidth", "encode_mmap", "encode", "tell")
NAME = "qwen25vl-7b-shaped"


# -- measuring a child process -----------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the converter starts llama.cpp's quantizer as a child)."""
    found = [pid]
    for child in found:
        try:
            with open(f"/proc/{child}/task/{child}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return found


def _rss(pid: int) -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes of one process."""
    anon = file = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
                elif line.startswith(("RssFile:", "RssShmem:")):
                    file += int(line.split()[1]) * 1024
    except OSError:
        pass
    return anon, file


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    """Polls a process tree's RSS (and a folder's size) until stopped; keeps the peaks."""

    def __init__(self, pid: int, folder: Path | None = None, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.folder, self.period = pid, folder, period
        self.peak_total = self.peak_anon = self.peak_disk = 0
        self.done = threading.Event()

    def run(self) -> None:
        ticks = 0
        while not self.done.is_set():
            parts = [_rss(p) for p in _tree(self.pid)]
            anon = sum(a for a, _ in parts)
            self.peak_anon = max(self.peak_anon, anon)
            self.peak_total = max(self.peak_total, anon + sum(f for _, f in parts))
            if self.folder is not None and ticks % 8 == 0:  # every 2 s: rglob is not free
                self.peak_disk = max(self.peak_disk, _folder_bytes(self.folder))
            ticks += 1
            self.done.wait(self.period)


def run_measured(command: list[str], log: Path, folder: Path | None = None) -> dict:
    """Run ``command``; its wall time, peak RSS (sampled and high-water mark) and last JSON line."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    load_before = os.getloadavg()[0]
    with open(log, "wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=env)
        sampler = Sampler(child.pid, folder)
        sampler.start()
        assert child.stdout is not None
        out = child.stdout.read()  # a few JSON lines; read to the end before reaping
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{command[:4]} failed ({code}); see {log}:\n{tail}")
    report = {}
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("{"):
            report = json.loads(line)
    return {
        "wall_s": wall,
        # ru_maxrss of a waited child is the largest of it and its reaped descendants (Linux).
        "maxrss_bytes": usage.ru_maxrss * 1024,
        "peak_rss_bytes": sampler.peak_total,
        "peak_anon_bytes": sampler.peak_anon,
        "peak_disk_bytes": sampler.peak_disk,
        "load_avg": [load_before, os.getloadavg()[0]],
        **report,
    }


# -- the steps ---------------------------------------------------------------------------------


def step_checkpoint(work: Path, args: argparse.Namespace) -> dict:
    folder = work / "checkpoint"
    command = [sys.executable, str(BENCH / "qwen25vl_checkpoint.py"), str(folder)]
    result = run_measured(command, work / "checkpoint.log")
    result["disk_bytes"] = _folder_bytes(folder)
    return result


def _convert(work: Path, args: argparse.Namespace, quant: str, outdir: str) -> dict:
    out = work / outdir
    command = [sys.executable, "-m", "convert.cli", str(work / "checkpoint"), "--outdir", str(out)]
    command += ["--quant", quant, "--mmproj-type", "f16", "--name", NAME, "--force"]
    command += ["--threads", str(args.threads)]
    result = run_measured(command, work / f"{outdir}.log", folder=out)
    manifest = json.loads((out / "manifest.json").read_text())
    result["files"] = {
        part: {"name": info["file"], "bytes": info["size"]}
        for part, info in manifest["files"].items()
    }
    result["disk_bytes"] = _folder_bytes(out)
    return result


def step_convert_f16(work: Path, args: argparse.Namespace) -> dict:
    return _convert(work, args, "F16", "f16")


def step_convert_q4km(work: Path, args: argparse.Namespace) -> dict:
    return _convert(work, args, "Q4_K_M", "q4km")


def step_bandwidth(work: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(BENCH / "decode_worker.py"), "bandwidth", str(work)]
    command += ["--threads", str(args.threads), "--best-of", "5"]
    return run_measured(command, work / "bandwidth.log")


def _engine(
    work: Path, args: argparse.Namespace, scenario: str, log: str, mmap: str = "auto"
) -> dict:
    command = [sys.executable, str(BENCH / "real_scale_engine.py"), scenario, str(work)]
    command += ["--threads", str(args.threads), "--mmap", mmap]
    result = run_measured(command, work / log)
    # llama.cpp's own account of its memory (verbose log): model, KV and compute buffers.
    text = (work / log).read_text(errors="replace").splitlines()
    result["buffers"] = [line.strip() for line in text if "buffer size" in line]
    return result


def step_encode_mmap(work: Path, args: argparse.Namespace) -> dict:
    """The encode scenario with the model file memory-mapped (llama.cpp's default), for memory."""
    return _engine(work, args, "encode", "encode-mmap.log", mmap="on")


def step_encode(work: Path, args: argparse.Namespace) -> dict:
    return _engine(work, args, "encode", "encode.log")


def step_tell(work: Path, args: argparse.Namespace) -> dict:
    result = _engine(work, args, "tell", "tell.log")
    # The same Generate from a new process: the prompt comes back from the disk cache.
    result["restart"] = _engine(work, args, "restart", "restart.log")
    return result


# -- the table ---------------------------------------------------------------------------------


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def table(results: dict, machine: str) -> str:
    rows: list[tuple[str, str]] = []

    def add(label: str, value: str) -> None:
        rows.append((label, value))

    if "checkpoint" in results:
        r = results["checkpoint"]
        add(
            "checkpoint (random bf16, 7B shapes)",
            f"{_gb(r['disk_bytes'])}; {r['wall_s']:.0f} s (complete shards are kept, not rewritten)",
        )
    for key, label in (("convert_f16", "F16"), ("convert_q4km", "Q4_K_M")):
        if key in results:
            r = results[key]
            files = ", ".join(f"{f['name']} {_gb(f['bytes'])}" for f in r["files"].values())
            add(
                f"convert to {label} (+ F16 mmproj)",
                f"{r['wall_s']:.0f} s; peak RSS {_gib(r['peak_rss_bytes'])} "
                f"(anonymous {_gib(r['peak_anon_bytes'])}, high-water {_gib(r['maxrss_bytes'])}); "
                f"disk peak {_gb(r['peak_disk_bytes'])}; {files}",
            )
    if "bandwidth" in results:
        r = results["bandwidth"]
        add(
            "memory read bandwidth (numpy)",
            f"{r['read_bytes_per_s'] / 1e9:.1f} GB/s, {r['threads']} threads",
        )
    if "encode_mmap" in results:
        r = results["encode_mmap"]
        add(
            "peak RSS, load + 3 photos encoded, model file memory-mapped",
            f"{_gib(r['peak_rss_bytes'])} (anonymous {_gib(r['peak_anon_bytes'])})",
        )
    if "encode" in results:
        r = results["encode"]
        add("load Q4_K_M + mmproj", f"{r['load_s']:.1f} s")
        add(
            "first encode after loading (allocates)",
            f"{r['first_encode_s']:.1f} s for {r['first_encode_tokens']} tokens",
        )
        for level in r["levels"]:
            add(
                f"encode 1 photo, detail {level['detail']}",
                f"{level['encode_s']:.1f} s for {level['tokens']} tokens "
                f"({level['prepared_size'][0]}x{level['prepared_size'][1]})",
            )
        add(
            "peak RSS, load + 3 photos encoded (app default: no mmap on a CPU)",
            f"{_gib(r['peak_rss_bytes'])} (anonymous {_gib(r['peak_anon_bytes'])}); "
            f"app estimate for 1 high-detail photo {_gib(r['estimate_bytes'])}",
        )
    if "tell" in results:
        r = results["tell"]
        cold, warm, restart = r["cold"], r["rerun"], r["restart"]["restart"]
        add(
            "tell, 5 photos (low detail), 256 new tokens",
            f"{r['cold_wall_s']:.0f} s after loading ({r['load_s']:.0f} s)",
        )
        add(
            "encode 5 photos",
            f"{sum(cold['encode_s']):.1f} s ({sum(cold['encode_s']) / 5:.1f} s/photo)",
        )
        add(
            "prefill",
            f"{cold['prompt_tokens'] / cold['prompt_eval_s']:.1f} tok/s ({cold['prompt_tokens']} tokens)",
        )
        if "bandwidth" in results:
            weights = r["weights_read_per_token_bytes"]
            ceiling = results["bandwidth"]["read_bytes_per_s"] / weights
            add(
                "decode",
                f"{cold['tokens_per_s']:.2f} tok/s; ceiling {ceiling:.2f} tok/s "
                f"({_gb(weights)} read per token) = {cold['tokens_per_s'] / ceiling:.0%}",
            )
        else:
            add("decode", f"{cold['tokens_per_s']:.2f} tok/s (seeded sampling, no speculation)")
        if "greedy" in r:  # the same story written greedily, prompt reused: the writing alone
            drafted, plain = r["greedy"]["speculation"], r["greedy"]["plain"]
            add(
                "5-photo story, greedy: with speculation / without",
                f"{drafted['tokens_per_s']:.2f} / {plain['tokens_per_s']:.2f} tok/s "
                f"({drafted['generated_tokens']} / {plain['generated_tokens']} tokens)",
            )
        # Random weights rarely write visible text, so the first token is when writing starts:
        # the run's wall time less its writing time.
        ttft_cold = r["cold_wall_s"] - cold["generation_s"]
        ttft_again = r["rerun_wall_s"] - warm["generation_s"]
        ttft_restart = r["restart"]["restart_wall_s"] - restart["generation_s"]
        add("time to first token, cold (model loaded)", f"{ttft_cold:.1f} s")
        add(
            "time to first token, Generate again (prompt state from memory)",
            f"{ttft_again:.2f} s ({ttft_again / ttft_cold:.2%} of cold)",
        )
        add(
            "time to first token, after a restart (prompt state from disk)",
            f"{ttft_restart:.2f} s + load {r['restart']['load_s']:.0f} s "
            f"({ttft_restart / ttft_cold:.2%} of cold)",
        )
        add(
            "peak RSS, 5-photo tell",
            f"{_gib(r['peak_rss_bytes'])} (anonymous {_gib(r['peak_anon_bytes'])}); "
            f"app estimate {_gib(r['estimate_bytes'])} "
            f"({r['estimate_bytes'] / r['peak_rss_bytes'] - 1:+.0%})",
        )
    loads = [v for r in results.values() if isinstance(r, dict) for v in r.get("load_avg", [])]
    lines = [
        f"Machine: {machine}; load average during the steps {min(loads):.1f}-{max(loads):.1f}"
        if loads
        else f"Machine: {machine}",
        "",
        "| measurement | value |",
        "|---|---|",
        *(f"| {label} | {value} |" for label, value in rows),
    ]
    return "\n".join(lines)


def describe_machine(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{os.cpu_count()} cores ({cpu}), {memory / 2**30:.0f} GiB RAM, {threads} threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "workdir", type=Path, help="folder for the checkpoint, outputs and results (~40 GB)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--redo", nargs="*", default=[], choices=STEPS, help="steps to run again")
    parser.add_argument("--only", nargs="*", choices=STEPS, help="run only these steps")
    parser.add_argument(
        "--note", default="", help="appended to the machine line (e.g. who shares it)"
    )
    args = parser.parse_args(argv)
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name in STEPS:
        if args.only is not None and name not in args.only:
            continue
        if name in results and name not in args.redo:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
        results[name] = globals()[f"step_{name}"](work, args)
        tmp = results_path.with_suffix(".part")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(results_path)
        print(f"[{time.strftime('%H:%M:%S')}] {name} done", file=sys.stderr, flush=True)
    machine = describe_machine(args.threads) + (f"; {args.note}" if args.note else "")
    print(table(results, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
