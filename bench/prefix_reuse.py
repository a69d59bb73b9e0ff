"""Time to first token after appending a 6th photo to a 5-photo album: prefix reuse against today.

Each column is its own ``LlamaCppBackend`` with empty caches in its own folder, the model loaded
before timing: tell the first five photos (cold), then the six (the sixth appended). ``whole prompt
only`` is the behaviour before prefix reuse (``prefix_reuse=False``: a saved state is used only for
the identical prompt; photo embeddings are cached either way); ``prefix reuse`` restores the five
photos' state and reads only the sixth photo and the text after it; ``after background preparation``
also lets ``LlamaCppBackend.prepare`` (what the GUI runs while the user arranges photos) read the
sixth photo and the rest of the prompt before Generate is pressed, so the run evaluates only the
prompt's last token again. Each run writes one token (``max_tokens=1``). Printed: a Markdown table,
the time the background preparation took, and the memory the kept prompt states hold.

Usage: ``python bench/prefix_reuse.py [--model TEXT.gguf --mmproj MMPROJ.gguf] [--workdir DIR]
[--size 1008x756] [--detail more] [--threads N] [--columns before,prefix,prepared] [--repeat N]``.
Without a model it writes bench/convert.py's 334M synthetic checkpoint (random weights) and converts
it to Q4_K_M + F16 mmproj once, in ``--workdir``. The 7B shape (``--model``, ``--detail trained``)
takes about 15 minutes for one round on an idle 2-core machine: each cold run is over 3 minutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


from engine import make_photos  # noqa: E402  (bench/engine.py: the same generated photos)

from desktop_app.engine.api import (  # noqa: E402
    Detail,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.llama_backend import LlamaCppBackend  # noqa: E402

DETAILS = {"trained": Detail.AS_TRAINED, "more": Detail.MORE, "most": Detail.MOST}


@dataclass(frozen=True)
class Row:
    column: str
    run: str
    first_token_s: float
    load_s: float
    encode_s: float
    prompt_s: float
    cells: int
    cells_read: int


def synthetic_model(folder: Path) -> tuple[Path, Path]:
    """bench/convert.py's 334M checkpoint as Q4_K_M text + F16 mmproj (made once in ``folder``)."""
    text, mmproj = folder / "synthetic-Q4_K_M.gguf", folder / "mmproj-synthetic-F16.gguf"
    if text.exists() and mmproj.exists():
        return text, mmproj
    from convert import convert_checkpoint

    spec = importlib.util.spec_from_file_location("bench_convert", REPO / "bench" / "convert.py")
    assert spec is not None and spec.loader is not None
    bench_convert = importlib.util.module_from_spec(spec)
    saved = sys.path[:]
    spec.loader.exec_module(bench_convert)  # it edits sys.path on import
    sys.path[:] = saved
    checkpoint = folder / "checkpoint"
    if not checkpoint.exists():
        bench_convert.make_checkpoint(checkpoint)
    result = convert_checkpoint(
        checkpoint, folder, quant="Q4_K_M", mmproj_type="f16", name="synthetic", force=True
    )
    return result.text_gguf, result.mmproj_gguf


def first_token(backend: LlamaCppBackend, request: StoryRequest) -> RunResult:
    """Run ``request`` until its first token; its result (stopped there)."""
    seen: list[TokenEvent] = []
    started = time.perf_counter()
    phases = []
    for event in backend.generate(request, should_stop=lambda: bool(seen)):
        if isinstance(event, PhaseEvent):
            phases.append(
                f"{event.phase.name.lower()} {event.index or ''} {time.perf_counter() - started:.1f}"
            )
        if isinstance(event, TokenEvent):
            seen.append(event)
            phases.append(f"token {time.perf_counter() - started:.1f}")
        elif isinstance(event, ResultEvent):
            print(f"  {len(request.photos)} photos: " + ", ".join(phases))
            return event.result
    raise RuntimeError("the run ended without a result")


def bench(
    column: str,
    text: Path,
    mmproj: Path,
    photos: list[Path],
    detail: Detail,
    threads: int | None,
    folder: Path,
    *,
    prefix_reuse: bool,
    prepare_first: bool = False,
) -> tuple[list[Row], int]:
    """The two runs of one column, and the bytes the kept prompt states hold in memory."""
    backend = LlamaCppBackend(
        text,
        mmproj,
        n_threads=threads,
        cache_dir=folder / "embeddings",
        prompt_cache_dir=folder / "prompts",
        prefix_reuse=prefix_reuse,
    )
    # One token: the time to it is the run's whole time (random weights write many tokens with
    # no visible text, so waiting for the first visible one would time the writing too).
    sampling = SamplingParams(temperature=0.0, max_tokens=1)
    rows = []
    try:
        backend.preload()
        for run, album in (("5 photos, cold", photos[:5]), ("6th appended", photos)):
            request = StoryRequest(photos=tuple(album), detail=detail, sampling=sampling)
            if prepare_first and len(album) == 6:
                began = time.perf_counter()
                for _event in backend.prepare(request, should_stop=lambda: False):
                    pass
                print(
                    f"background preparation of the 6th photo: {time.perf_counter() - began:.1f} s"
                )
            read = backend.prompt_tokens_read
            started = time.perf_counter()
            result = first_token(backend, request)
            timings = result.timings
            rows.append(
                Row(
                    column,
                    run,
                    time.perf_counter() - started,
                    timings.load_s,
                    sum(timings.encode_s),
                    timings.prompt_eval_s,
                    timings.prompt_tokens,
                    backend.prompt_tokens_read - read,
                )
            )
        kept = backend.prompts.memory_used
    finally:
        backend.close()
    return rows, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--mmproj", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "prefix")
    parser.add_argument("--size", default="1008x756")
    parser.add_argument("--detail", choices=sorted(DETAILS), default="more")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every column")
    parser.add_argument(
        "--columns",
        default="before,prefix,prepared",
        help="which of before, prefix, prepared to run (comma-separated)",
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.model and args.mmproj:
        text, mmproj = args.model, args.mmproj
    else:
        text, mmproj = synthetic_model(args.workdir / "synthetic")
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        root = Path(scratch)
        photos = make_photos(root, 6, (width, height))
        rows, kept = [], {}
        columns = {
            "before": ("whole prompt only (before)", False, False),
            "prefix": ("prefix reuse", True, False),
            "prepared": ("after background preparation", True, True),
        }
        # Round robin: a machine whose speed drifts (shared hosts do) weighs on every column.
        for round_ in range(1, args.repeat + 1):
            for name in args.columns.split(","):
                column, reuse, prepare_first = columns[name]
                measured, kept[column] = bench(
                    column,
                    text,
                    mmproj,
                    photos,
                    DETAILS[args.detail],
                    args.threads,
                    root / f"{name}-{round_}",
                    prefix_reuse=reuse,
                    prepare_first=prepare_first,
                )
                rows.extend(measured)
    load = os.getloadavg()
    print(
        f"model {text.name}, {args.size} photos at detail {args.detail}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads or 'default'} threads, load {load[0]:.1f} at the end\n"
    )
    print("| engine | run | time to first token | load | encode | prompt | cells | cells read |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.column} | {row.run} | {row.first_token_s:.1f} s | {row.load_s:.1f} s | "
            f"{row.encode_s:.1f} s | {row.prompt_s:.1f} s | {row.cells} | {row.cells_read} |"
        )
    appended: dict[str, list[float]] = {}
    for row in rows:
        if row.run == "6th appended":
            appended.setdefault(row.column, []).append(row.first_token_s)
    medians = {column: statistics.median(times) for column, times in appended.items()}
    baseline = next(iter(medians))
    print()
    for column, median in medians.items():
        print(
            f"append, {column}: median {median:.2f} s of {len(appended[column])}"
            + (f" = {median / medians[baseline]:.3f} x {baseline}" if column != baseline else "")
        )
    for column, nbytes in kept.items():
        print(f"prompt states kept in memory, {column}: {nbytes / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
