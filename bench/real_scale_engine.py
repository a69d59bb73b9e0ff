"""The engine half of bench/real_scale.py, run in a child process per scenario (its peak RSS is
what the parent measures): ``python bench/real_scale_engine.py encode|tell|restart WORKDIR``.

Prints one JSON line of timings. Uses the app's own ``LlamaCppBackend`` on the Q4_K_M text GGUF
and F16 mmproj that real_scale.py converted; llama.cpp's buffer sizes go to stderr (verbose).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from desktop_app.engine import costs  # noqa: E402
from desktop_app.engine.api import (  # noqa: E402
    Detail,
    Phase,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.images import prepare_image  # noqa: E402
from desktop_app.engine.llama_backend import MIN_CONTEXT, LlamaCppBackend  # noqa: E402
from desktop_app.engine.prompt import build_prompt  # noqa: E402

PHOTO_SIZE = (1600, 1200)  # a 4:3 camera photo, downscaled by every detail level
ALBUM = 5
NEW_TOKENS = 256


def photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct photos (different pixels, so no embedding is shared)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"photo{index + 1}.jpg"
        if not path.is_file():
            image = Image.linear_gradient("L").resize(PHOTO_SIZE).convert("RGB")
            image.paste((50 * index % 255, 120, 200), (0, 0, 500 + 100 * index, 400))
            image.save(path, quality=90)
        paths.append(path)
    return paths


MMAP: bool | None = None  # --mmap: None lets the app choose (no mmap on a CPU)


def backend(
    work: Path, threads: int, *, fresh_caches: bool, caches: Path | None = None
) -> LlamaCppBackend:
    out = work / "q4km"
    manifest = json.loads((out / "manifest.json").read_text())
    caches = caches or work / "app-cache"
    if fresh_caches and caches.exists():
        shutil.rmtree(caches)
    return LlamaCppBackend(
        out / manifest["files"]["text"]["file"],
        out / manifest["files"]["mmproj"]["file"],
        n_threads=threads,
        cache_dir=caches / "embeddings",
        prompt_cache_dir=caches / "prompts",
        manifest=manifest,
        use_mmap=MMAP,
        verbose=True,
    )


def run(
    engine: LlamaCppBackend, request: StoryRequest, *, first_token_only: bool = False
) -> RunResult:
    """Run to the end, or (``first_token_only``) stop after the first token."""
    seen = {"stop": False}
    for event in engine.generate(request, should_stop=lambda: seen["stop"]):
        if first_token_only and isinstance(event, TokenEvent):
            seen["stop"] = True
        if isinstance(event, ResultEvent):
            return event.result
    raise RuntimeError("no result")


def encode_once(engine: LlamaCppBackend, photo: Path, detail: Detail) -> dict:
    """Seconds the vision encoder takes on one photo: the run is closed once it is encoded
    (prompt reading is timed by the tell scenario)."""
    started = None
    info: dict = {"detail": detail.value}
    events = engine.generate(
        StoryRequest(photos=(photo,), detail=detail, sampling=SamplingParams(max_tokens=1)),
        should_stop=lambda: False,
    )
    for event in events:
        if isinstance(event, PhaseEvent) and event.phase is Phase.ENCODING_PHOTO:
            started = time.perf_counter()
        elif isinstance(event, PhaseEvent) and event.phase is Phase.READING_PROMPT:
            assert started is not None
            info["encode_s"] = time.perf_counter() - started
            break
    events.close()  # stops the run here
    prepared = prepare_image(photo, detail.token_budget)
    info["tokens"] = prepared.tokens
    info["prepared_size"] = list(prepared.prepared_size)
    return info


def preload_for(engine: LlamaCppBackend, request: StoryRequest) -> float:
    """Load with the context ``request`` will plan (so its run does not reload); seconds taken."""
    prepared = [prepare_image(p, request.detail.token_budget) for p in request.photos]
    text = build_prompt(
        request.instruction, len(prepared), chat_template=engine.text_info.chat_template
    )
    started = time.perf_counter()
    tokens = [p.tokens for p in prepared]
    engine.preload(engine.plan_context(text, tokens, request.sampling.max_tokens))
    return time.perf_counter() - started


def timed(engine: LlamaCppBackend, request: StoryRequest) -> tuple[RunResult, float]:
    started = time.perf_counter()
    result = run(engine, request)
    return result, time.perf_counter() - started


def weights_read_per_token(text_gguf: Path) -> int:
    """Bytes of text weights one decoded token reads: all of them but the embedding table
    (one row of it is looked up)."""
    import gguf

    reader = gguf.GGUFReader(text_gguf)
    return sum(int(t.n_bytes) for t in reader.tensors if t.name != "token_embd.weight")


def scenario_encode(work: Path, threads: int) -> dict:
    engine = backend(work, threads, fresh_caches=True)
    started = time.perf_counter()
    engine.preload(MIN_CONTEXT)  # one photo of up to 1024 tokens and 1 new token fit
    load_s = time.perf_counter() - started
    warm_up, photo = photos(work / "photos", 2)
    # The first encode after loading also allocates the encoder's buffers: timed on its own.
    first = encode_once(engine, warm_up, Detail.LOW)
    levels = [encode_once(engine, photo, detail) for detail in Detail]
    largest = max(level["tokens"] for level in levels)
    assert engine._loaded is not None
    n_ctx = engine._loaded.n_ctx
    engine.close()
    return {
        "load_s": load_s,
        "first_encode_s": first["encode_s"],
        "first_encode_tokens": first["tokens"],
        "levels": levels,
        "n_ctx": n_ctx,
        "use_mmap": engine.use_mmap,
        "estimate_bytes": costs.run_memory_bytes(engine.shape, n_ctx, largest, 0),
    }


def album_request(work: Path) -> StoryRequest:
    return StoryRequest(
        photos=tuple(photos(work / "photos", ALBUM)),
        detail=Detail.LOW,
        sampling=SamplingParams(max_tokens=NEW_TOKENS, seed=3),
    )


def scenario_tell(work: Path, threads: int) -> dict:
    engine = backend(work, threads, fresh_caches=True)
    request = album_request(work)
    load_s = preload_for(engine, request)
    cold, cold_wall = timed(engine, request)
    # Generate again, to its first token (the rest is the same decoding as the cold run).
    started = time.perf_counter()
    rerun = run(engine, request, first_token_only=True)
    rerun_wall = time.perf_counter() - started
    # The story written greedily with and without speculation (a seeded sampled run, as above,
    # never drafts), both from the prompt state the cold run left: only the writing differs.
    greedy = replace(request, sampling=replace(request.sampling, temperature=0.0, seed=None))
    writing = {}
    for speculation in (True, False):
        engine.speculation = speculation
        written, _wall = timed(engine, greedy)
        writing["speculation" if speculation else "plain"] = written.timings.to_dict()
    engine.speculation = True
    assert engine._loaded is not None
    n_ctx = engine._loaded.n_ctx
    largest = max(p.tokens for p in cold.photos)
    engine.close()
    return {
        "load_s": load_s,
        "cold_wall_s": cold_wall,
        "rerun_wall_s": rerun_wall,
        "cold": cold.timings.to_dict(),
        "rerun": rerun.timings.to_dict(),
        "greedy": writing,
        "photo_tokens": [p.tokens for p in cold.photos],
        "n_ctx": n_ctx,
        "weights_read_per_token_bytes": weights_read_per_token(engine.model_path),
        "estimate_bytes": costs.run_memory_bytes(
            engine.shape, n_ctx, largest, cold.timings.prompt_tokens
        ),
        "finish": [cold.finish_reason.value, rerun.finish_reason.value],
    }


def scenario_restart(work: Path, threads: int) -> dict:
    """A new process, the same album: the prompt state comes from the disk cache."""
    engine = backend(work, threads, fresh_caches=False)
    request = album_request(work)
    load_s = preload_for(engine, request)  # the tell's context: a state needs an equal one
    started = time.perf_counter()
    result = run(engine, request, first_token_only=True)
    wall = time.perf_counter() - started
    engine.close()
    return {"load_s": load_s, "restart": result.timings.to_dict(), "restart_wall_s": wall}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=("encode", "tell", "restart"))
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mmap", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args()
    global MMAP
    MMAP = {"auto": None, "on": True, "off": False}[args.mmap]
    report = globals()[f"scenario_{args.scenario}"](args.workdir, args.threads)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
