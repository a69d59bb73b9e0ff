"""What a story backend is asked for, and the one stream of events it answers with.

Every backend (embedded llama.cpp, an OpenAI-compatible server, the replay backend) implements
``StoryBackend``, so a story is told through these types whichever backend runs it. (The front
ends also use other engine modules: model files, photo sizes, speeds, diagnostics.)
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Union

# The instruction placed before the photos: by default one of the trained ones (see prompt.py);
# re-exported, the CLI and GUI take them from here.
from desktop_app.engine.prompt import DEFAULT_INSTRUCTION as DEFAULT_INSTRUCTION
from desktop_app.engine.prompt import TRAINED_INSTRUCTIONS as TRAINED_INSTRUCTIONS
from desktop_app.engine.prompt import is_trained_instruction as is_trained_instruction


class Detail(enum.Enum):
    """How many vision tokens one photo may cost, named by what the model saw in training.

    Training frames were small movie stills at their own size (about 150-250 image tokens), so
    "as trained" is the budget closest to them; more detail goes beyond the training resolution
    (sharper boxes on big photos, maybe, and slower runs). The values before these names (low,
    normal, high) still read as the same budgets: settings and scripts that use them keep
    working, and runs stored with them keep their recorded detail.
    """

    AS_TRAINED = "trained"
    MORE = "more"
    MOST = "most"
    # The first releases' names, as aliases (code written against them keeps working).
    LOW = "trained"
    NORMAL = "more"
    HIGH = "most"

    @property
    def token_budget(self) -> int:
        """Per-image vision-token budget (llama.cpp accepts 8..4096)."""
        return {Detail.AS_TRAINED: 256, Detail.MORE: 512, Detail.MOST: 1024}[self]

    @property
    def label(self) -> str:
        """What the GUI calls it: "As trained", "More detail", "Most detail"."""
        return {
            Detail.AS_TRAINED: "As trained",
            Detail.MORE: "More detail",
            Detail.MOST: "Most detail",
        }[self]

    @property
    def beyond_training(self) -> bool:
        """True when photos get more pixels than the model's training frames had."""
        return self is not Detail.AS_TRAINED

    @classmethod
    def _missing_(cls, value: object) -> Detail | None:
        # The names of the first releases: the same budgets under their old words.
        return _OLD_DETAIL_NAMES.get(value) if isinstance(value, str) else None


_OLD_DETAIL_NAMES = {"low": Detail.AS_TRAINED, "normal": Detail.MORE, "high": Detail.MOST}
OLD_DETAIL_NAMES = tuple(_OLD_DETAIL_NAMES)


def recorded_detail(parameters: dict[str, object]) -> Detail | None:
    """The detail a stored run was told with, whatever the name it was stored under.

    The token budget a run recorded decides (it is what the model saw); the stored name is the
    fallback for runs without one.
    """
    budget = parameters.get("token_budget")
    for detail in Detail:
        if budget == detail.token_budget:
            return detail
    name = parameters.get("detail")
    try:
        return Detail(name) if isinstance(name, str) else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings; the defaults are the model card's."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 4096
    seed: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }


class Preset(enum.Enum):
    """Named sampling presets offered in the GUI and CLI."""

    CREATIVE = "creative"
    FAITHFUL = "faithful"

    def sampling(self, *, max_tokens: int = 4096, seed: int | None = None) -> SamplingParams:
        if self is Preset.FAITHFUL:
            return SamplingParams(temperature=0.2, top_p=0.8, max_tokens=max_tokens, seed=seed)
        return SamplingParams(temperature=0.7, top_p=0.9, max_tokens=max_tokens, seed=seed)


@dataclass(frozen=True)
class KnownPhoto:
    """What the library recorded about an unchanged photo file, so a run need not redo it:
    the sha256 of its bytes and its upright (EXIF-oriented) pixel size."""

    sha256: str
    upright_size: tuple[int, int]


@dataclass(frozen=True)
class StoryRequest:
    """One story run: photos in album order and how to tell their story.

    ``known`` is aligned with ``photos`` (or empty): the library's facts about each file.
    """

    photos: tuple[Path, ...]
    detail: Detail = Detail.AS_TRAINED
    sampling: SamplingParams = field(default_factory=SamplingParams)
    strict_format: bool = False
    instruction: str = DEFAULT_INSTRUCTION
    known: tuple[KnownPhoto | None, ...] = ()


@dataclass(frozen=True)
class CachedParts:
    """What a run of a request would find already computed (``StoryBackend.cached``).

    ``photos`` says, in album order, which photos' vision embeddings are cached (a photo past
    its end is not); ``prompt`` whether the KV state after the whole prompt is, in which case the
    run encodes no photo and reads one prompt token; otherwise ``photos_read`` how many leading
    photos are already read into a kept or live prompt state (the run neither encodes nor reads
    them: appending a photo reads only the new one). The default knows of nothing cached.
    """

    photos: tuple[bool, ...] = ()
    prompt: bool = False
    photos_read: int = 0

    def photo(self, index: int) -> bool:
        """Whether the photo at 0-based ``index`` needs no vision encoder (its own embedding
        is cached, or it is already read)."""
        return (
            self.prompt
            or index < self.photos_read
            or (index < len(self.photos) and self.photos[index])
        )

    def select(self, indices: Iterable[int]) -> CachedParts:
        """The same for only the photos at 0-based ``indices``, in that order (the leading
        photos already read stay so only while every one before them is selected)."""
        chosen = list(indices)
        read = 0
        while read < len(chosen) and chosen[read] == read and read < self.photos_read:
            read += 1
        return CachedParts(tuple(self.photo(index) for index in chosen), self.prompt, read)

    def describe(self, photos: int) -> str:
        """``photos and prompt cached``, ``5 of 6 photos already read``, ``2 of 5 photos
        cached``, or "" when nothing is."""
        if self.prompt:
            return "photos and prompt cached"
        if self.photos_read:
            return f"{min(self.photos_read, photos)} of {photos} photos already read"
        cached = sum(self.photo(index) for index in range(photos))
        if not cached:
            return ""
        return "photos cached" if cached == photos else f"{cached} of {photos} photos cached"


NOTHING_CACHED = CachedParts()


class Phase(enum.Enum):
    LOADING_MODEL = "loading model"
    PREPARING_PHOTO = "preparing photo"
    ENCODING_PHOTO = "encoding photo"
    # The run waits for a photo a stopped run or a background preparation left in the vision
    # encoder (it cannot be interrupted): ``index`` is that photo when the run uses it.
    FINISHING_PHOTO = "finishing photo"
    FINISHING_OLD_PHOTO = "finishing a photo prepared for the old detail"
    FINISHING_OTHER_PHOTO = "finishing a photo prepared for photos no longer in the story"
    READING_PROMPT = "reading prompt"
    WRITING = "writing"


@dataclass(frozen=True)
class PhaseEvent:
    """The run entered a phase; ``index``/``total`` count photos where that makes sense (1-based);
    ``seconds``: at most how long the phase should take, where the run can tell (0: unknown)."""

    phase: Phase
    index: int = 0
    total: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        if self.phase is Phase.FINISHING_PHOTO:
            text = f"finishing photo {self.index}, prepared in the background"
        elif self.phase in (Phase.FINISHING_OLD_PHOTO, Phase.FINISHING_OTHER_PHOTO):
            text = self.phase.value
        else:
            text = ""
        if text:
            return f"{text} (≤ {math.ceil(self.seconds)} s)" if self.seconds > 0 else text
        if self.total:
            return f"{self.phase.value} {self.index}/{self.total}"
        return self.phase.value


@dataclass(frozen=True)
class TokenEvent:
    """A piece of generated text, in order.

    ``tokens`` counts the generated tokens this piece completes: more than one when earlier
    tokens held only part of a UTF-8 character (or no text at all). The run's final count is
    ``Timings.generated_tokens``.
    """

    text: str
    tokens: int = 1


@dataclass(frozen=True)
class PhotoInfo:
    """A photo as the model saw it: original and prepared pixel sizes, vision-token cost."""

    path: Path
    original_size: tuple[int, int]
    prepared_size: tuple[int, int]
    tokens: int

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "original_size": list(self.original_size),
            "prepared_size": list(self.prepared_size),
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage; ``encode_s`` has one entry per photo (0.0 when cached).

    ``prompt_reused``: the prompt's KV state was restored from an earlier identical run, so
    ``prompt_eval_s`` is the restore, not ``prompt_tokens`` tokens read.
    ``prompt_cells_reused``: of the ``prompt_tokens`` cells, those of the leading chunks an
    earlier run had read (restored or left live), not read again.
    """

    load_s: float = 0.0
    encode_s: tuple[float, ...] = ()
    prompt_eval_s: float = 0.0
    first_token_s: float = 0.0
    generation_s: float = 0.0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    prompt_reused: bool = False
    prompt_cells_reused: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.generation_s if self.generation_s > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "load_s": self.load_s,
            "encode_s": list(self.encode_s),
            "prompt_eval_s": self.prompt_eval_s,
            "first_token_s": self.first_token_s,
            "generation_s": self.generation_s,
            "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "prompt_reused": self.prompt_reused,
            "tokens_per_s": self.tokens_per_s,
        }


class FinishReason(enum.Enum):
    STOP = "stop"  # the model ended its answer
    LENGTH = "length"  # max_tokens reached
    CANCELLED = "cancelled"  # should_stop() returned True; the partial output is kept


@dataclass(frozen=True)
class RunResult:
    """The end of a run: the raw output (partial when cancelled) and how it was made."""

    raw_output: str
    finish_reason: FinishReason
    photos: tuple[PhotoInfo, ...]
    sampling: SamplingParams
    backend: str  # e.g. "llama.cpp (CPU)", "server http://127.0.0.1:8080"
    model: str  # the model's identity as the backend knows it (file name or server model id)
    timings: Timings = field(default_factory=Timings)

    @property
    def cancelled(self) -> bool:
        return self.finish_reason is FinishReason.CANCELLED


@dataclass(frozen=True)
class ResultEvent:
    result: RunResult


Event = Union[PhaseEvent, TokenEvent, ResultEvent]  # noqa: UP007 (a runtime alias on 3.10)

ShouldStop = Callable[[], bool]


class StoryBackend(Protocol):
    """One way of running the model. Not thread-safe: one ``generate`` at a time."""

    @property
    def description(self) -> str:
        """Backend and device for the status bar, e.g. ``llama.cpp (CUDA)``."""
        ...

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        """Yield phase and token events, then exactly one ``ResultEvent``.

        Raises ``StorytellerError`` (before or during the stream) for problems the user can fix.
        ``should_stop`` is checked between tokens; when it returns True the stream ends with a
        ``ResultEvent`` whose finish reason is ``CANCELLED`` and which keeps the partial output.
        It is also checked before writing (while photos encode and the prompt is read); a run
        stopped there ends the same way, with no text.
        """
        ...

    def cached(self, request: StoryRequest) -> CachedParts:
        """What a run of ``request`` would find cached, without loading or running the model
        (``NOTHING_CACHED`` when the backend cannot say). Not while a ``generate`` runs."""
        ...

    def close(self) -> None:
        """Release the model; the backend cannot be used afterwards."""
        ...
