"""One decoder for bench/decode_ceiling.py, kept loaded and driven over stdin/stdout.

    python bench/decode_worker.py KIND WORKDIR --threads N

KIND: ``bandwidth`` (numpy reads a 2 GiB buffer: bytes/s), ``llama`` (llama.cpp alone: a ctypes
loop of one-token ``llama_decode`` calls with the app's context settings), ``llama-1t`` (the
same on one thread), ``app`` (the app's ``LlamaCppBackend``: one small photo, free format,
token by token, its prompt state reused after the first burst so a burst is decoding only).
After loading it prints ``ready``; then each line ``N`` on stdin runs a burst of N tokens (or
one read) and prints one JSON line; an empty line ends it. ``bandwidth --best-of N`` instead
prints the best of N readings and ends (bench/real_scale.py's ceiling).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))


def bandwidth_worker(threads: int):
    import threading

    import numpy as np

    buffer = np.ones(2 * 2**30 // 8, dtype=np.uint64)  # touched: every page resident
    parts = np.array_split(buffer, threads)

    def burst(_count: int) -> dict:
        workers = [threading.Thread(target=np.bitwise_xor.reduce, args=(p,)) for p in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return {"read_bytes_per_s": buffer.nbytes / (time.perf_counter() - started)}

    return burst


def llama_worker(work: Path, threads: int):
    import llama_cpp

    manifest = json.loads((work / "q4km" / "manifest.json").read_text())
    path = work / "q4km" / manifest["files"]["text"]["file"]
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = 0
    model_params.use_mmap = False  # as the app loads on a CPU
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = 4096, 512, 512
    params.n_threads = params.n_threads_batch = threads
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # the app's CPU setting
    ctx = llama_cpp.llama_init_from_model(model, params)

    def decode(batch: list[int]) -> None:
        array = (llama_cpp.llama_token * len(batch))(*batch)
        assert llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(array, len(batch))) == 0
        llama_cpp.llama_get_logits_ith(ctx, -1)

    decode(list(range(100, 132)))
    position = [0]

    def burst(count: int) -> dict:
        started = time.perf_counter()
        for _ in range(count):
            position[0] += 1
            decode([200 + position[0] % 1000])
        return {"tokens": count, "seconds": time.perf_counter() - started}

    info = llama_cpp.llama_print_system_info().decode()
    return burst, {"avx512": "AVX512 = 1" in info}


def app_worker(work: Path, threads: int, folder: Path):
    from PIL import Image
    from real_scale_engine import backend, preload_for, run

    from desktop_app.engine.api import SamplingParams, StoryRequest

    engine = backend(work, threads, fresh_caches=False, caches=folder / "caches")
    engine.speculation = False  # token by token: what the ceiling bounds
    Image.linear_gradient("L").resize((112, 112)).convert("RGB").save(folder / "small.png")

    def request(count: int) -> StoryRequest:
        return StoryRequest(
            photos=(folder / "small.png",), sampling=SamplingParams(max_tokens=count)
        )

    preload_for(engine, request(64))
    run(engine, request(1))  # reads the prompt once; later bursts reuse its state

    def burst(count: int) -> dict:
        timings = run(engine, request(count + 1)).timings
        # The first token is drawn from the logits the restored prompt left: count evaluations.
        return {"tokens": timings.generated_tokens - 1, "seconds": timings.generation_s}

    return burst, {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("bandwidth", "llama", "llama-1t", "app"))
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--best-of", type=int, help="bandwidth: print the best of N readings and end (real_scale)"
    )
    args = parser.parse_args()
    if args.kind == "bandwidth" and args.best_of:
        read = bandwidth_worker(args.threads)
        best = max(read(1)["read_bytes_per_s"] for _ in range(args.best_of))
        print(json.dumps({"read_bytes_per_s": best, "threads": args.threads}))
        return 0
    with tempfile.TemporaryDirectory(prefix="storyteller-decode-") as folder:
        facts: dict = {}
        if args.kind == "bandwidth":
            burst = bandwidth_worker(args.threads)
        elif args.kind.startswith("llama"):
            threads = 1 if args.kind == "llama-1t" else args.threads
            burst, facts = llama_worker(args.workdir, threads)
        else:
            burst, facts = app_worker(args.workdir, args.threads, Path(folder))
        print(json.dumps({"ready": True, **facts}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                break
            print(json.dumps(burst(int(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
