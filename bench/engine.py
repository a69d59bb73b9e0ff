"""Time to first token and tokens/s: Storyteller's engine vs plain llama-cpp-python.

Same GGUF, same photos (prepared once, 28-aligned, so both sides see identical pixels), same
sampling (temperature, top-p, top-k 50, seed), same context and threads:

- ``plain``: ``Llama.create_chat_completion`` with ``MTMDChatHandler`` (re-encodes every photo
  on every call; its mtmd context is created before timing);
- ``storyteller``: ``LlamaCppBackend`` (model loaded before timing; the first run starts with
  an empty embedding cache, the repeated run reuses it);
- ``storyteller --strict-format``: the same with the grammar, for its cost on tokens/s.

Usage: ``python bench/engine.py [--model TEXT.gguf --mmproj MMPROJ.gguf] [--photos N]
[--size WxH] [--max-tokens N] [--detail low|normal|high]``. Without a model it converts the
tiny test checkpoint (tests/fixtures) and benchmarks that: it measures the pipeline's overhead,
not a real model's speed.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from desktop_app.engine.costs import (  # noqa: E402
    PROMPT_TEXT_TOKENS,
    context_tokens,
    round_context,
)
from desktop_app.engine.events import (  # noqa: E402
    Detail,
    ResultEvent,
    SamplingParams,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.images import prepare_image  # noqa: E402
from desktop_app.engine.llama_backend import TOP_K, LlamaCppBackend  # noqa: E402
from desktop_app.engine.prompt import chat_messages  # noqa: E402


@dataclass
class Row:
    pipeline: str
    run: str
    first_token_s: float
    tokens_per_s: float
    tokens: int
    encode_s: float


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    photos = []
    for index in range(count):
        path = folder / f"photo{index + 1}.jpg"
        image = Image.linear_gradient("L").resize(size).convert("RGB")
        image.paste((40 * index % 255, 90, 200), (0, 0, size[0] // 3, size[1] // 3))
        image.save(path, quality=92)
        photos.append(path)
    return photos


def tiny_model(folder: Path) -> tuple[Path, Path]:
    from convert import convert_checkpoint

    result = convert_checkpoint(
        REPO / "tests" / "fixtures" / "tiny-qwen25vl" / "checkpoint",
        folder,
        quant="F16",
        mmproj_type="f16",
        name="tiny-qwen25vl",
    )
    return result.text_gguf, result.mmproj_gguf


def bench_plain(
    text: Path,
    mmproj: Path,
    photos: list[Path],
    detail: Detail,
    sampling: SamplingParams,
    n_ctx: int,
    threads: int,
    runs: int,
) -> list[Row]:
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    handler = MTMDChatHandler(clip_model_path=str(mmproj), verbose=False, use_gpu=True)
    llm = llama_cpp.Llama(
        model_path=str(text),
        chat_handler=handler,
        n_ctx=n_ctx,
        n_batch=512,
        n_ubatch=512,
        n_threads=threads,
        n_threads_batch=threads,
        n_gpu_layers=-1,
        logits_all=False,
        verbose=False,
    )
    handler._init_mtmd_context(llm)  # load the projector before timing, as we do
    parts = []
    for path in photos:
        png = prepare_image(path, detail.token_budget).encoded("PNG")
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        parts.append({"type": "image_url", "image_url": {"url": url}})
    messages = chat_messages("Create a story based on these images.", parts)
    rows = []
    for run in range(runs):
        started = time.perf_counter()
        stream = llm.create_chat_completion(
            messages=messages,
            stream=True,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=TOP_K,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=sampling.seed,
        )
        first = None
        tokens = 0
        for chunk in stream:
            if chunk["choices"][0]["delta"].get("content"):
                if first is None:
                    first = time.perf_counter()
                tokens += 1
        ended = time.perf_counter()
        first = first or ended
        rate = tokens / (ended - first) if ended > first else 0.0
        rows.append(
            Row(
                "plain MTMDChatHandler",
                "first" if run == 0 else "repeat",
                first - started,
                rate,
                tokens,
                float("nan"),
            )
        )
    llm.close()
    return rows


def bench_ours(
    text: Path,
    mmproj: Path,
    photos: list[Path],
    detail: Detail,
    sampling: SamplingParams,
    n_ctx: int,
    threads: int,
    runs: int,
    strict: bool,
    cache_dir: Path,
) -> list[Row]:
    backend = LlamaCppBackend(text, mmproj, n_ctx=n_ctx, n_threads=threads, cache_dir=cache_dir)
    backend.preload()
    request = StoryRequest(
        photos=tuple(photos), detail=detail, sampling=sampling, strict_format=strict
    )
    label = "storyteller" + (" --strict-format" if strict else "")
    rows = []
    for run in range(runs):
        result = None
        tokens = 0
        for event in backend.generate(request, should_stop=lambda: False):
            if isinstance(event, TokenEvent):
                tokens += 1
            elif isinstance(event, ResultEvent):
                result = event.result
        assert result is not None
        timings = result.timings
        rows.append(
            Row(
                label,
                "first" if run == 0 else "repeat",
                timings.first_token_s,
                timings.tokens_per_s,
                timings.generated_tokens,
                sum(timings.encode_s),
            )
        )
    backend.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--mmproj", type=Path)
    parser.add_argument("--photos", type=int, default=5)
    parser.add_argument("--size", default="448x336")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--strict-max-tokens", type=int, default=4096)
    parser.add_argument("--detail", choices=[d.value for d in Detail], default="normal")
    parser.add_argument("--runs", type=int, default=2, help="first run + repeats")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from desktop_app.engine.device import physical_cores

    threads = args.threads or physical_cores()
    width, height = (int(v) for v in args.size.lower().split("x"))
    detail = Detail(args.detail)
    with tempfile.TemporaryDirectory(prefix="storyteller-bench-") as scratch:
        folder = Path(scratch)
        if args.model is None:
            text, mmproj = tiny_model(folder / "model")
            which = "tiny random test model (pipeline overhead, not real-model speed)"
        else:
            text, mmproj = args.model, args.mmproj
            which = text.name
        photos = make_photos(folder, args.photos, (width, height))
        sampling = SamplingParams(max_tokens=args.max_tokens, seed=42)
        strict_sampling = SamplingParams(max_tokens=args.strict_max_tokens, seed=42)
        # Both pipelines get the context Storyteller sizes for the run (llama-cpp-python's
        # per-token cost grows with n_ctx, so a larger one would handicap the plain call).
        image_tokens = [prepare_image(p, detail.token_budget).tokens for p in photos]
        text_bound = 4 * PROMPT_TEXT_TOKENS
        n_ctx = round_context(context_tokens(text_bound, image_tokens, args.max_tokens))
        strict_ctx = round_context(context_tokens(text_bound, image_tokens, args.strict_max_tokens))
        rows = bench_plain(text, mmproj, photos, detail, sampling, n_ctx, threads, args.runs)
        common = (text, mmproj, photos, detail)
        rows += bench_ours(*common, sampling, n_ctx, threads, args.runs, False, folder / "cache")
        rows += bench_ours(
            *common, strict_sampling, strict_ctx, threads, args.runs, True, folder / "strict"
        )
    print(
        f"model: {which}; {args.photos} photos {width}x{height}, detail {detail.value} "
        f"(<= {detail.token_budget} tokens each); {threads} threads; max {args.max_tokens} tokens "
        f"({args.strict_max_tokens} strict); n_ctx {n_ctx} ({strict_ctx} strict)"
    )
    header = f"{'pipeline':34} {'run':7} {'first token s':>13} {'tokens/s':>10} {'tokens':>7} {'encode s':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        encode = "re-encodes" if row.encode_s != row.encode_s else f"{row.encode_s:.3f}"
        print(
            f"{row.pipeline:34} {row.run:7} {row.first_token_s:13.3f} {row.tokens_per_s:10.1f} "
            f"{row.tokens:7d} {encode:>9}"
        )
    plain = statistics.mean(r.tokens_per_s for r in rows if r.pipeline.startswith("plain"))
    ours = statistics.mean(r.tokens_per_s for r in rows if r.pipeline == "storyteller")
    strict = statistics.mean(r.tokens_per_s for r in rows if "strict" in r.pipeline)
    print(
        f"\ntokens/s: storyteller {ours / plain:.2f}x plain; strict format {strict / ours:.2f}x "
        "unconstrained"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
