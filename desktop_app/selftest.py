"""The self-test behind ``Storyteller --self-test`` (and the first-run guide's model check).

It answers "does this installation work?" on a user's machine or in CI, without a display: Qt
starts (offscreen when there is no display) and draws a widget, decodes a JPEG through its image
plugins and writes a PDF; llama.cpp's shared libraries load and report which ggml backend they were
built with (CPU, CUDA, Metal, Vulkan); Pillow reads and writes photos; and, given a model, one
photo goes through the real engine into a (short) story. The frozen bundle runs exactly this code,
so a missing Qt plugin or native library shows up here instead of as a crash at a user's desk.

Nothing here prints or exits: ``run_self_test`` returns a ``SelfTestReport`` and the command line
(``desktop_app.cli``) shows it. Nothing here imports Qt either: the Qt check lives with the GUI
(``desktop_app.ui.selftest_qt``) and the command line passes it in, so this module sits in its
own layer between the front ends and ``app`` (pyproject.toml's contracts).
"""

from __future__ import annotations

import enum
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app import __version__
from desktop_app.engine import device
from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)

# Few tokens: the story check proves the pipeline runs, not that the model writes well.
STORY_CHECK_MAX_TOKENS = 24
# Detail lines kept from a multi-line error message.
_MAX_ERROR_LINES = 6
# A real iPhone-style HEIC (package data, so the bundle has it too) and its size.
SAMPLE_HEIC = Path(__file__).resolve().parent / "selftest_photo.heic"
SAMPLE_HEIC_SIZE = (336, 252)


class SelfTestProblem(StorytellerError):
    """A check found something wrong; the message says what and what to do."""


class CheckStatus(enum.Enum):
    PASSED = "ok"
    FAILED = "FAILED"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, outcome, a one-line summary and optional detail lines."""

    name: str
    status: CheckStatus
    summary: str
    details: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class SelfTestReport:
    """Every check, in the order run; ``ok`` when none failed."""

    checks: tuple[CheckResult, ...]
    total_seconds: float = 0.0
    header: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(check.status is not CheckStatus.FAILED for check in self.checks)

    def format(self) -> str:
        """A plain-text report: one line per check, details indented under it."""
        lines = [*self.header]
        width = max((len(check.name) for check in self.checks), default=0)
        for check in self.checks:
            lines.append(
                f"[{check.status.value:>7}] {check.name:<{width}}  {check.summary}"
                f"  ({check.seconds:.2f} s)"
            )
            lines.extend(f"            {detail}" for detail in check.details)
        verdict = "all checks passed" if self.ok else "SOME CHECKS FAILED"
        lines.append(f"self-test: {verdict} in {self.total_seconds:.2f} s")
        return "\n".join(lines)


@dataclass(frozen=True)
class LlamaBuildInfo:
    """What the loaded llama.cpp was compiled with."""

    version: str
    backends: tuple[str, ...]  # ggml backend registry names, e.g. ("CUDA", "CPU")
    gpu_offload: bool  # llama_supports_gpu_offload(): a GPU device is usable now
    system_info: str  # llama_print_system_info(): CPU features and per-backend flags

    @property
    def accelerator(self) -> str:
        """The compiled-in backend meant to do the heavy work: a GPU backend if any, else ``CPU``.

        Compiled, not necessarily usable: ``gpu_offload`` says whether a device was found.
        """
        return device.gpu_backend(self.backends) or "CPU"


def llama_build_info() -> LlamaBuildInfo:
    """Load llama.cpp and report its version and compiled-in ggml backends.

    The backend list comes from the engine's ggml registry query (``desktop_app.engine.device``).
    Raises ImportError/OSError when llama-cpp-python or its shared libraries are missing.
    """
    import llama_cpp
    from llama_cpp import llama_cpp as low_level

    system_info = low_level.llama_print_system_info()
    if isinstance(system_info, bytes):
        system_info = system_info.decode(errors="replace")
    return LlamaBuildInfo(
        version=str(getattr(llama_cpp, "__version__", "unknown")),
        backends=device.compiled_backends(),
        gpu_offload=device.gpu_offload_supported(),
        system_info=str(system_info).strip(" |"),
    )


@contextmanager
def timed_check(results: list[CheckResult], name: str) -> Iterator[dict[str, object]]:
    """Run a check body; it fills ``outcome`` (status, summary, details). Exceptions fail it."""
    outcome: dict[str, object] = {}
    started = time.perf_counter()
    try:
        yield outcome
    except Exception as err:  # a self-test reports every failure instead of stopping at the first
        logger.debug("self-test check %s failed", name, exc_info=True)
        expected = isinstance(err, (StorytellerError, FileNotFoundError))
        message_lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        first = message_lines[0] if message_lines else ""
        outcome = {
            "status": CheckStatus.FAILED,
            "summary": first if expected else f"{type(err).__name__}: {first}",
            # Long messages (numpy's import advice) end with the actual cause: keep the tail.
            "details": tuple(message_lines[1:][-_MAX_ERROR_LINES:]),
        }
    results.append(
        CheckResult(
            name=name,
            status=outcome.get("status", CheckStatus.PASSED),  # type: ignore[arg-type]
            summary=str(outcome.get("summary", "")),
            details=tuple(outcome.get("details", ())),  # type: ignore[arg-type]
            seconds=time.perf_counter() - started,
        )
    )


def sample_photo(path: Path, size: tuple[int, int] = (448, 336)) -> Path:
    """Write a small synthetic photo (sky, sun, ground, a figure) as a JPEG at ``path``."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, (120, 180, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(70, 140, 70))
    draw.ellipse((width - 110, 20, width - 40, 90), fill=(255, 210, 60))
    draw.rectangle(
        (width // 3, height // 3, width // 3 + 40, height * 2 // 3 + 10), fill=(200, 40, 40)
    )
    draw.ellipse(
        (width // 3 + 5, height // 3 - 35, width // 3 + 35, height // 3 - 5), fill=(240, 200, 170)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=90)
    return path


def check_llama(results: list[CheckResult]) -> LlamaBuildInfo | None:
    """Load llama.cpp (text and vision libraries) and report its build."""
    info: LlamaBuildInfo | None = None
    with timed_check(results, "llama.cpp") as outcome:
        info = llama_build_info()
        import llama_cpp.mtmd_cpp  # noqa: F401  (loads libmtmd, the vision library)

        if not info.backends:
            raise SelfTestProblem(
                "llama.cpp loaded but lists no ggml backend (see the log with -v)"
            )
        devices = [f"{d.kind} {d.name} ({d.description})" for d in device.devices()]

        outcome["summary"] = f"llama-cpp-python {info.version}, backend {info.accelerator}" + (
            " (GPU offload available)" if info.gpu_offload else ""
        )
        outcome["details"] = (
            f"ggml backends: {', '.join(info.backends)}",
            f"devices: {'; '.join(devices) or 'none'}",
            f"system: {info.system_info}",
            "vision library (mtmd): loaded",
        )
    return info


def check_images(results: list[CheckResult], workdir: Path) -> None:
    """Pillow writes and reads JPEG and PNG; the engine prepares a photo for the model."""
    with timed_check(results, "images") as outcome:
        from PIL import Image, features

        jpeg = sample_photo(workdir / "pil-check.jpg")
        png = workdir / "pil-check.png"
        with Image.open(jpeg) as image:
            image.load()
            if image.size != (448, 336) or image.format != "JPEG":
                raise SelfTestProblem("Pillow could not read back a JPEG")
            image.save(png)
        with Image.open(png) as image:
            red, _green, blue = image.convert("RGB").getpixel((5, 5))
            if not (blue > red and blue > 150):
                raise SelfTestProblem("Pillow decoded a PNG with the wrong colours")
        details = [f"Pillow {Image.__version__}: JPEG and PNG read and written"]
        details.append("WebP: " + ("yes" if features.check("webp") else "no"))
        try:
            from desktop_app.engine.images import heif_support, prepare_image
        except ImportError:
            details.append("engine image preparation: not available in this build")
        else:
            prepared = prepare_image(jpeg, 256)
            width, height = prepared.prepared_size
            if width % 28 or height % 28:
                raise SelfTestProblem(f"photo prepared to {width}x{height}, not multiples of 28")
            details.append(f"engine prepared a 448x336 photo to {width}x{height}")
            if heif_support():
                # An iPhone photo's path: prepare a real HEIC like any photo. pi-heif only
                # decodes, so the photo ships with the app rather than being written here.
                if prepare_image(SAMPLE_HEIC, 256).original_size != SAMPLE_HEIC_SIZE:
                    raise SelfTestProblem("a HEIC photo was decoded to the wrong size")
                details.append("HEIC: read (pi-heif)")
            else:
                details.append("HEIC: no (install pi-heif to read iPhone photos)")
        outcome["summary"] = "photos can be read"
        outcome["details"] = tuple(details)


def check_story(results: list[CheckResult], workdir: Path, model: Path, mmproj: Path) -> None:
    """Tell a short story about one photo through the embedded llama.cpp backend."""
    with timed_check(results, "story") as outcome:
        for what, path in (("model", model), ("mmproj", mmproj)):
            if not path.is_file():
                raise FileNotFoundError(f"{what} file {path} does not exist: check the path")
        from desktop_app.app.telling import PhotosTold, TellOptions, tell_photos
        from desktop_app.engine.api import Detail, PhaseEvent, SamplingParams
        from desktop_app.engine.llama_backend import LlamaCppBackend

        photo = sample_photo(workdir / "story-check.jpg")
        options = TellOptions(
            detail=Detail.AS_TRAINED,
            sampling=SamplingParams(temperature=0.0, max_tokens=STORY_CHECK_MAX_TOKENS, seed=1),
        )
        backend = LlamaCppBackend(model, mmproj, cache_dir=workdir / "embeddings")
        phases: list[str] = []
        told: PhotosTold | None = None
        try:
            for event in tell_photos(backend, options, [photo]):
                if isinstance(event, PhaseEvent):
                    phases.append(event.describe())
                elif isinstance(event, PhotosTold):
                    told = event
            description = backend.description
        finally:
            backend.close()
        if told is None:  # tell_photos ends with it unless it raised
            raise SelfTestProblem("the backend ended without a result")
        result = told.result
        timings = result.timings
        outcome["summary"] = (
            f"{model.name}: {timings.generated_tokens} tokens "
            f"({result.finish_reason.value}) on {description}"
        )
        preview = result.raw_output.strip().replace("\n", " ")
        (seen,) = result.photos
        outcome["details"] = (
            f"phases: {', '.join(phases)}",
            f"photo {seen.original_size} -> {seen.prepared_size}, {seen.tokens} vision tokens",
            f"load {timings.load_s:.2f} s, first token {timings.first_token_s:.2f} s, "
            f"{timings.tokens_per_s:.1f} tokens/s",
            f"output: {preview[:120]!r}",
        )


QtCheck = Callable[[list[CheckResult], Path, "Path | None"], None]


def run_self_test(
    *,
    model: Path | None = None,
    mmproj: Path | None = None,
    screenshot: Path | None = None,
    qt_check: QtCheck | None = None,
) -> SelfTestReport:
    """Run every check; with ``model`` and ``mmproj`` also a one-photo story.

    ``qt_check(results, workdir, screenshot)`` is the GUI's check (``ui.selftest_qt.check_qt``,
    which the command line passes); without it the Qt check is reported as skipped.
    """
    started = time.perf_counter()
    results: list[CheckResult] = []
    frozen = bool(getattr(sys, "frozen", False))
    header = (
        f"Storyteller {__version__} self-test "
        f"({'bundled app' if frozen else 'Python ' + sys.version.split()[0]}, {sys.platform})",
    )
    with tempfile.TemporaryDirectory(prefix="storyteller-selftest-") as tmp:
        workdir = Path(tmp)
        if qt_check is not None:
            qt_check(results, workdir, screenshot)
        else:
            results.append(CheckResult("Qt", CheckStatus.SKIPPED, "no GUI check was given"))
        check_llama(results)
        check_images(results, workdir)
        if model is not None or mmproj is not None:
            if model is None or mmproj is None:
                results.append(
                    CheckResult(
                        "story",
                        CheckStatus.FAILED,
                        "give both --model (text GGUF) and --mmproj (vision GGUF)",
                    )
                )
            else:
                check_story(results, workdir, model, mmproj)
        else:
            results.append(
                CheckResult(
                    "story",
                    CheckStatus.SKIPPED,
                    "add --model and --mmproj to tell a one-photo story",
                )
            )
    return SelfTestReport(tuple(results), time.perf_counter() - started, header)
