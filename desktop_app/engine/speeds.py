"""How long a story will take on this machine, from this machine's own runs.

A run has three costs that grow with different things: the vision encoder with the photos'
tokens, prompt reading (prefill) with the prompt's KV cells, writing (decode) with the new
tokens. ``Speeds`` holds one rate for each, per model and accelerator, measured from every finished
run and kept in ``paths.speeds_file()``. Before a model's first run here the rates come from its
size, scaled from a 7B-shaped reference measured by bench/real_scale.py, and are marked as an
estimate. ``RunClock`` turns the same rates into a live remaining time as a run's events arrive.
Both take what the run will find cached (``CachedParts``, from the backend): a photo whose
embedding is cached is not encoded, and a prompt whose KV state is cached is neither encoded
nor read, so Generate again on the same album costs the writing alone.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from desktop_app.engine.api import (
    NOTHING_CACHED,
    CachedParts,
    FinishReason,
    Phase,
    RunResult,
)
from desktop_app.engine.prompt import TOKENS_AROUND_IMAGE
from desktop_app.fileio import atomic_write_text

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
# The reference: Qwen2.5-VL-7B shapes, Q4_K_M text + F16 mmproj, 2 threads on a 2-core AMD EPYC.
# Encoding and prefill were measured with the machine shared (load average 5-9: about half of
# the 2 cores; bench/real_scale.py), so they err on the slow side; decoding on the idle machine
# (bench/decode_ceiling.py: 5.8 tokens/s; 0.5 when shared), since writing is most of a run.
# Prefill and the vision encoder are compute-bound (they scale with the weights and the
# cores); decoding reads every text weight per token (it scales with the text file's size, and
# with cores only until memory bandwidth is the limit).
REFERENCE_TEXT_BYTES = 4_680_529_184
REFERENCE_MMPROJ_BYTES = 1_354_162_816
REFERENCE_CORES = 2
REFERENCE_ENCODE_S_PER_TOKEN = 0.13
REFERENCE_PREFILL_TOKENS_PER_S = 3.8
REFERENCE_DECODE_TOKENS_PER_S = 5.8
DECODE_CORE_SCALING_LIMIT = 4.0
# New tokens a finished story spends per photo (analysis tables + its story segment), before
# this machine has finished one.
DEFAULT_TOKENS_PER_PHOTO = 420.0
STORY_OVERHEAD_TOKENS = 60  # the narrative-structure table and the closing lines
# How much a new run's measurement counts against what was known (exponential average).
NEW_WEIGHT = 0.5


@dataclass(frozen=True)
class Speeds:
    """This machine's rates for one model (``measured`` False: derived from its size)."""

    encode_s_per_token: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    tokens_per_photo: float = DEFAULT_TOKENS_PER_PHOTO
    measured: bool = False
    runs: int = 0


@dataclass(frozen=True)
class RunTime:
    """The seconds each part of a run is expected to take."""

    encode_s: float
    prefill_s: float
    decode_s: float
    new_tokens: int
    measured: bool

    @property
    def total_s(self) -> float:
        return self.encode_s + self.prefill_s + self.decode_s


def from_model_size(text_bytes: int, mmproj_bytes: int, cores: int) -> Speeds:
    """Rates scaled from the reference by the model's file sizes and the cores (an estimate)."""
    compute = max(1, min(cores, 16)) / REFERENCE_CORES
    text = max(text_bytes, 1) / REFERENCE_TEXT_BYTES
    vision = max(mmproj_bytes, 1) / REFERENCE_MMPROJ_BYTES
    return Speeds(
        encode_s_per_token=REFERENCE_ENCODE_S_PER_TOKEN * vision / compute,
        prefill_tokens_per_s=REFERENCE_PREFILL_TOKENS_PER_S * compute / text,
        decode_tokens_per_s=REFERENCE_DECODE_TOKENS_PER_S
        * min(compute, DECODE_CORE_SCALING_LIMIT)
        / text,
    )


def expected_new_tokens(speeds: Speeds, photos: int, max_tokens: int) -> int:
    """New tokens a story of ``photos`` photos will most likely write (at most ``max_tokens``)."""
    likely = STORY_OVERHEAD_TOKENS + speeds.tokens_per_photo * photos
    return max(1, min(max_tokens, math.ceil(likely)))


def encode_seconds(
    speeds: Speeds, image_tokens: Sequence[int], cached: CachedParts = NOTHING_CACHED
) -> list[float]:
    """Seconds the vision encoder should spend on each photo (0 for one it need not encode)."""
    return [
        0.0 if cached.photo(index) else speeds.encode_s_per_token * tokens
        for index, tokens in enumerate(image_tokens)
    ]


def estimate(
    speeds: Speeds,
    image_tokens: Sequence[int],
    text_tokens: int,
    max_tokens: int,
    cached: CachedParts = NOTHING_CACHED,
) -> RunTime:
    """How long a run of these photos should take, given what it will find ``cached`` (by
    default nothing: a cold run). A cached photo costs no encoding, a photo already read neither
    encoding nor prefill (nor does the text before it); a cached prompt costs no
    encoding and no prefill: its one token read again for the logits is what a cold run's last
    prompt token does, the first step of writing, which the decode time already counts."""
    cells = text_tokens + sum(t + TOKENS_AROUND_IMAGE for t in image_tokens)
    if cached.photos_read:  # the text before the photos and the first photos are not read again
        read = image_tokens[: cached.photos_read]
        cells -= text_tokens + sum(t + TOKENS_AROUND_IMAGE for t in read)
    new_tokens = expected_new_tokens(speeds, len(image_tokens), max_tokens)
    return RunTime(
        encode_s=sum(encode_seconds(speeds, image_tokens, cached)),
        prefill_s=0.0 if cached.prompt else cells / speeds.prefill_tokens_per_s,
        decode_s=new_tokens / speeds.decode_tokens_per_s,
        new_tokens=new_tokens,
        measured=speeds.measured,
    )


def describe(seconds: float, *, measured: bool = True, left: bool = False) -> str:
    """``about 4 min`` (``left``: ``about 4 min left``), ``under a minute``; ``(estimate)`` when
    the rates come from the model's size, not from this machine's runs."""
    text = "under a minute" if seconds < 60 else f"about {round(seconds / 60)} min"
    if left:
        text += " left"
    return text if measured else f"{text} (estimate)"


def _blend(old: float, new: float, first: bool) -> float:
    return new if first else (1 - NEW_WEIGHT) * old + NEW_WEIGHT * new


def updated(speeds: Speeds, result: RunResult) -> Speeds:
    """``speeds`` with what ``result`` measured folded in (unchanged parts stay as they were)."""
    timings = result.timings
    first = not speeds.measured
    changes: dict[str, float] = {}
    encoded = [
        (seconds, photo.tokens)
        for seconds, photo in zip(timings.encode_s, result.photos, strict=False)
        if seconds > 0
    ]
    if encoded:
        per_token = sum(s for s, _ in encoded) / max(1, sum(t for _, t in encoded))
        changes["encode_s_per_token"] = _blend(speeds.encode_s_per_token, per_token, first)
    read = timings.prompt_tokens - timings.prompt_cells_reused
    if not timings.prompt_reused and timings.prompt_eval_s > 0 and read >= 16:
        rate = read / timings.prompt_eval_s
        changes["prefill_tokens_per_s"] = _blend(speeds.prefill_tokens_per_s, rate, first)
    if timings.generated_tokens >= 8 and timings.generation_s > 0:
        changes["decode_tokens_per_s"] = _blend(
            speeds.decode_tokens_per_s, timings.tokens_per_s, first
        )
    if result.finish_reason is FinishReason.STOP and result.photos:
        per_photo = max(0, timings.generated_tokens - STORY_OVERHEAD_TOKENS) / len(result.photos)
        changes["tokens_per_photo"] = _blend(speeds.tokens_per_photo, per_photo, first)
    if "decode_tokens_per_s" not in changes:
        return speeds  # a run cancelled early measured too little to trust
    return replace(speeds, **changes, measured=True, runs=speeds.runs + 1)


def model_key(text_path: Path, accelerator: str) -> str:
    """Which rates apply: the text model file (name and size) on this accelerator."""
    try:
        size = Path(text_path).stat().st_size
    except OSError:
        size = 0
    return f"{Path(text_path).name}|{size}|{accelerator}"


class SpeedBook:
    """The rates of every model run on this machine, in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            logger.warning("ignoring unreadable %s: %s", self.path, err)
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            return {}
        models = data.get("models")
        return models if isinstance(models, dict) else {}

    def get(self, key: str) -> Speeds | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            speeds = Speeds(**entry)
        except TypeError:
            return None
        rates = (speeds.encode_s_per_token, speeds.prefill_tokens_per_s, speeds.decode_tokens_per_s)
        return speeds if all(math.isfinite(r) and r > 0 for r in rates) else None

    def speeds(self, key: str, fallback: Callable[[], Speeds]) -> Speeds:
        """The measured rates of ``key``, else ``fallback()`` (the estimate from the size)."""
        return self.get(key) or fallback()

    def record(self, key: str, result: RunResult, fallback: Callable[[], Speeds]) -> Speeds:
        """Fold ``result`` into the rates of ``key`` and save them (atomically)."""
        speeds = updated(self.speeds(key, fallback), result)
        if not speeds.measured:
            return speeds
        models = self._read()
        models[key] = asdict(speeds)
        try:
            atomic_write_text(
                self.path, json.dumps({"format": FORMAT_VERSION, "models": models}, indent=1)
            )
        except OSError as err:  # only the estimate is lost, never the story
            logger.warning("cannot save run speeds to %s: %s", self.path, err)
        return speeds


def for_model(
    book: SpeedBook, text_path: Path, mmproj_path: Path, accelerator: str, cores: int
) -> Speeds:
    """This machine's rates for a model: measured if it has run here, else from its size."""

    def from_size() -> Speeds:
        try:
            sizes = Path(text_path).stat().st_size, Path(mmproj_path).stat().st_size
        except OSError:
            sizes = REFERENCE_TEXT_BYTES, REFERENCE_MMPROJ_BYTES
        return from_model_size(*sizes, cores)

    return book.speeds(model_key(text_path, accelerator), from_size)


class RunClock:
    """The remaining time of a run in progress, from its phase events and tokens (``cached``:
    what the run will find cached, as for ``estimate``)."""

    def __init__(
        self,
        speeds: Speeds,
        image_tokens: Sequence[int],
        text_tokens: int,
        max_tokens: int,
        *,
        cached: CachedParts = NOTHING_CACHED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.speeds = speeds
        self.cached = cached
        self.encode_s = encode_seconds(speeds, image_tokens, cached)
        self.plan = estimate(speeds, image_tokens, text_tokens, max_tokens, cached)
        self.max_tokens = max_tokens
        self.clock = clock
        self.phase: Phase | None = None
        self.index = 0
        self.phase_started = clock()
        self.tokens = 0
        self.writing_started: float | None = None

    def on_phase(self, phase: Phase, index: int = 0) -> None:
        self.phase, self.index = phase, index
        self.phase_started = self.clock()
        if phase is Phase.WRITING and self.writing_started is None:
            self.writing_started = self.phase_started

    def on_tokens(self, count: int = 1) -> None:
        self.tokens += count

    def _decode_rate(self) -> float:
        """The rate seen in this run once it is meaningful, else the known one."""
        if self.writing_started is not None and self.tokens >= 16:
            elapsed = self.clock() - self.writing_started
            if elapsed > 0:
                return self.tokens / elapsed
        return self.speeds.decode_tokens_per_s

    def remaining_s(self) -> float:
        """Seconds the run should still take (0 once it is past every estimate)."""
        in_phase = self.clock() - self.phase_started
        # A story that outgrows the likely length still ends by max_tokens.
        expected = min(self.max_tokens, max(self.plan.new_tokens, self.tokens + 32))
        decode = max(0, expected - self.tokens) / self._decode_rate()
        if self.phase is Phase.WRITING:
            return decode
        if self.phase is Phase.READING_PROMPT:
            return max(0.0, self.plan.prefill_s - in_phase) + decode
        if self.phase is Phase.ENCODING_PHOTO and self.index >= 1:
            encode = sum(self.encode_s[self.index - 1 :])
            return max(0.0, encode - in_phase) + self.plan.prefill_s + decode
        return self.plan.total_s  # loading or preparing: all of it is still ahead
