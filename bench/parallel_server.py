"""Benchmark: ``storyteller eval --generate --parallel 1`` against ``--parallel 4`` on one
``llama-server -np 4 -c <4 x the per-story context>``, side by side.

    python bench/parallel_server.py --workdir /somewhere/with/space [--shape medium|tiny]

The model is generated, never downloaded: ``medium`` (Qwen2.5-1.5B-like text, a small vision
tower, random bf16 written by bench/qwen25vl_checkpoint.py, ~3.6 GB) converted to Q4_K_M; ``tiny``
is the committed test fixture (seconds, for trying the script). The reference folder holds
``--stories`` stories of ``--photos`` generated photos each. ``llama-server`` is the one the tests
build (tests/llama_server_build.py, cached per machine). Both runs use the same server and the
same greedy request per story, into fresh run folders; each run's wall time is the CLI's whole
``eval --generate`` (its scoring of a dozen stories takes well under a second), and its tokens
are the records' ``generated_tokens``. Weights are random, so only time means anything.

It prints a Markdown table: wall time, stories/h, generated tokens/s over the wall time, each
stream's decode rate (its tokens / its writing time, as llama-server measured them: the
records' ``generation_s`` come from the server's ``timings``, which start at the first generated
token, visible or not), and the decode rate summed over the streams in flight (``--parallel``
streams at once, each at that rate: the issue's fallback criterion when prefill and image
encoding, compute-bound on a CPU, keep stories/h lower). A second table times decoding alone:
``--slots`` requests of a one-line prompt writing ``--decode-tokens`` tokens each (``ignore_eos``),
one after another and then all at once on the same server, their rates read from llama-server's
``timings``: what batching the streams buys once no slot is reading a prompt or encoding a photo
(both run on the server's main loop, and every other slot waits meanwhile).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "engine"))
sys.path.append(str(Path(__file__).resolve().parent))

from server_processes import API_KEY  # noqa: E402

TINY = REPO / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint"


def model_files(shape: str, workdir: Path) -> tuple[Path, Path]:
    """The text and mmproj GGUFs of ``shape`` (generated and converted once, then reused)."""
    from convert import convert_checkpoint

    out = workdir / f"{shape}-gguf"
    made = sorted(out.glob("*.gguf"))
    if len(made) == 2:
        mmproj = next(p for p in made if p.name.startswith("mmproj"))
        return next(p for p in made if p != mmproj), mmproj
    if shape == "tiny":
        checkpoint, quant = TINY, "F16"
    else:
        from kquant import SHAPES
        from qwen25vl_checkpoint import write_checkpoint

        checkpoint, quant = workdir / f"{shape}-checkpoint", "Q4_K_M"
        print(f"writing the {shape} checkpoint to {checkpoint}", file=sys.stderr, flush=True)
        write_checkpoint(checkpoint, SHAPES[shape])
    print(f"converting to {quant}", file=sys.stderr, flush=True)
    result = convert_checkpoint(checkpoint, out, quant=quant, mmproj_type="f16", name=shape)
    return result.text_gguf, result.mmproj_gguf


def reference_folder(folder: Path, stories: int, photos: int) -> Path:
    """``stories`` reference stories of ``photos`` generated photos each (448x336, varied)."""
    from PIL import Image, ImageDraw

    if folder.exists():
        shutil.rmtree(folder)  # exactly ``stories`` stories, whatever ran before
    folder.mkdir(parents=True)
    for number in range(1, stories + 1):
        (folder / f"s{number:02d}.txt").write_text("Frame 1: a day out.")
        frames = folder / f"s{number:02d}"
        frames.mkdir(exist_ok=True)
        for index in range(1, photos + 1):
            image = Image.new("RGB", (448, 336), (20 * number % 256, 40 * index % 256, 120))
            draw = ImageDraw.Draw(image)
            draw.ellipse((30 * index, 20 * number % 200, 30 * index + 120, 20 * number % 200 + 90))
            image.save(frames / f"{index}.png")
    return folder


def tell_all(url: str, run: Path, reference: Path, parallel: int, args: argparse.Namespace):
    """Run ``eval --generate`` into ``run``; (wall seconds, records)."""
    command = [
        sys.executable,
        "-m",
        "desktop_app",
        "eval",
        str(run),
        "--reference",
        str(reference),
        "--generate",
        "--server",
        url,
        "--api-key",
        API_KEY,
        "--parallel",
        str(parallel),
        "--temperature",
        "0",
        "--max-tokens",
        str(args.max_tokens),
        "--quiet",
        "--json",
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    records = [json.loads(p.read_text()) for p in sorted(run.glob("*.json"))]
    return wall, records


def row(parallel: int, wall: float, records: list[dict]) -> dict[str, float | str]:
    tokens = sum(r["timings"]["generated_tokens"] for r in records)
    writing = sum(r["timings"]["generation_s"] for r in records)
    stream_rate = tokens / writing if writing else 0.0  # token-weighted over the stories
    return {
        "run": f"--parallel {parallel}",
        "stories": len(records),
        "wall_s": wall,
        "stories_per_h": len(records) * 3600 / wall,
        "tokens_per_s_wall": tokens / wall,
        "stream_decode_tokens_per_s": stream_rate,
        "decode_tokens_per_s_summed": parallel * stream_rate,
    }


def decode_rates(url: str, streams: int, tokens: int) -> list[float]:
    """llama-server's decode tokens/s of ``streams`` text-only requests sent at once."""
    from concurrent.futures import ThreadPoolExecutor

    body = json.dumps(
        {
            "messages": [{"role": "user", "content": "Tell a story about a day at the sea."}],
            "max_tokens": tokens,
            "ignore_eos": True,
            "temperature": 0,
        }
    ).encode()

    def one(_index: int) -> float:
        request = urllib.request.Request(
            url + "/v1/chat/completions",
            data=body,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=1800) as response:
            timings = json.loads(response.read())["timings"]
        return timings["predicted_n"] / (timings["predicted_ms"] / 1000)

    with ThreadPoolExecutor(streams) as pool:
        return list(pool.map(one, range(streams)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--shape", choices=("medium", "tiny"), default="medium")
    parser.add_argument("--stories", type=int, default=12)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--story-context", type=int, default=4096)
    parser.add_argument(
        "--runs", type=int, nargs="*", default=[1, 4], help="the --parallel of each run"
    )
    parser.add_argument("--decode-tokens", type=int, default=256)
    args = parser.parse_args(argv)

    from llama_server_build import ensure_llama_server
    from server_processes import running_server

    workdir = args.workdir.expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = ensure_llama_server()
    text, mmproj = model_files(args.shape, workdir)
    reference = reference_folder(workdir / "reference", args.stories, args.photos)

    class Model:  # what running_server reads of the tests' TinyModel
        text_gguf, mmproj_gguf = text, mmproj

    rows = []
    context = args.slots * args.story_context
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for parallel in args.runs:
        # A fresh server per run: llama-server keeps the prompts it read, and a second run of
        # the same stories would reuse them.
        with running_server(
            "llama-server", Model, workdir, binary=binary, parallel=args.slots, ctx=context
        ) as server:
            run = workdir / f"run-{stamp}-p{parallel}"
            wall, records = tell_all(server.url, run, reference, parallel, args)
            rows.append(row(parallel, wall, records))
            print(rows[-1], file=sys.stderr, flush=True)
    with running_server(
        "llama-server", Model, workdir, binary=binary, parallel=args.slots, ctx=context
    ) as server:
        alone = [decode_rates(server.url, 1, args.decode_tokens)[0] for _ in range(args.slots)]
        together = decode_rates(server.url, args.slots, args.decode_tokens)
    load = os.getloadavg()
    print(
        f"\n{args.stories} stories of {args.photos} photos, {args.max_tokens} tokens max, "
        f"greedy; {args.shape} model; llama-server -np {args.slots} -c {context}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {load[0]:.1f}\n"
    )
    print(
        "| run | wall | stories/h | tokens/s over the wall | decode tokens/s per stream "
        "| decode tokens/s summed over the streams |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['wall_s']:.0f} s | {r['stories_per_h']:.0f} | "
            f"{r['tokens_per_s_wall']:.1f} | {r['stream_decode_tokens_per_s']:.1f} | "
            f"{r['decode_tokens_per_s_summed']:.1f} |"
        )
    print(
        f"\ndecoding alone ({args.slots} requests of {args.decode_tokens} tokens, "
        "a one-line prompt):\n"
    )
    print("| streams at once | decode tokens/s per stream | summed over the streams |")
    print("|---|---|---|")
    print(f"| 1 | {sum(alone) / len(alone):.1f} | {sum(alone) / len(alone):.1f} |")
    print(f"| {args.slots} | {sum(together) / len(together):.1f} | {sum(together):.1f} |")
    print(f"\ndecoding alone: {sum(together) / (sum(alone) / len(alone)):.2f}x summed")
    if not rows:
        return 0
    base, best = rows[0], rows[-1]
    if len(rows) > 1:
        print(
            f"\nspeed-up: {best['stories_per_h'] / base['stories_per_h']:.2f}x stories/h, "
            f"{best['decode_tokens_per_s_summed'] / base['decode_tokens_per_s_summed']:.2f}x "
            "decode tokens/s summed over the streams"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
