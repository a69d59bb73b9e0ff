"""Stop while a photo is in the vision encoder, on the real llama.cpp and the tiny model.

llama.cpp's vision encoder cannot be interrupted, and on the 7B shape one photo takes 36-154 s on
2 cores: Stop used to wait for it (measured: 20 s). The encode now runs on its own thread. These
tests hold that thread at a gate, so "the encode is still running" is a fact, not a race: the run
stops at once, the encode's work still lands in the cache, and nothing frees the projector
under it. Closing does not wait: the encode's thread frees the projector when it is done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from engine_helpers import Gate, backend_in, join_vision_threads
from PIL import Image

from desktop_app.engine import photo_encoder
from desktop_app.engine.api import (
    FinishReason,
    Phase,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
)
from desktop_app.engine.llama_backend import LlamaCppBackend

if TYPE_CHECKING:
    from tests.conftest import TinyModel

pytestmark = pytest.mark.slow

REQUEST_SEED = 5


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("album")
    Image.linear_gradient("L").resize((96, 72)).convert("RGB").save(folder / "1.png")
    Image.new("RGB", (64, 88), (30, 140, 200)).save(folder / "2.png")
    return [folder / "1.png", folder / "2.png"]


@pytest.fixture
def request_(album: list[Path]) -> StoryRequest:
    return StoryRequest(
        photos=tuple(album), sampling=SamplingParams(max_tokens=12, seed=REQUEST_SEED)
    )


@pytest.fixture
def fresh(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = backend_in(tiny_model, tmp_path)
    yield engine
    engine.close()


def run(
    engine: LlamaCppBackend, request: StoryRequest, stop_when: Callable[[object], bool]
) -> tuple[RunResult, float]:
    """The run's result and the seconds from the stop request to the result."""
    state: dict[str, float | None] = {"at": None}
    for event in engine.generate(request, should_stop=lambda: state["at"] is not None):
        if state["at"] is None and stop_when(event):
            state["at"] = time.perf_counter()
        if isinstance(event, ResultEvent):
            at = state["at"]
            return event.result, (time.perf_counter() - at) if at is not None else 0.0
    raise AssertionError("no result")


def encoding(index: int) -> Callable[[object], bool]:
    return lambda e: (
        isinstance(e, PhaseEvent) and e.phase is Phase.ENCODING_PHOTO and e.index == index
    )


def never(_event: object) -> bool:
    return False


def test_stop_while_a_photo_is_encoding_returns_at_once_and_keeps_the_photo(
    fresh: LlamaCppBackend,
    backend: LlamaCppBackend,
    request_: StoryRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = Gate(monkeypatch)
    stopped, latency = run(fresh, request_, stop_when=encoding(1))
    assert gate.entered.is_set() and not gate.finished.is_set()  # photo 1 is still encoding
    assert stopped.finish_reason is FinishReason.CANCELLED and stopped.raw_output == ""
    assert latency < 1.0
    assert stopped.timings.encode_s == ()  # no partial encode time counts as a measurement
    assert fresh.photos_encoded == 0

    gate.open()
    again, _ = run(fresh, request_, stop_when=never)
    assert again.finish_reason is not FinishReason.CANCELLED
    assert fresh.photos_encoded == 2  # photo 1 by the stopped run's encode, photo 2 now
    assert again.timings.encode_s[0] == 0.0 and again.timings.encode_s[1] > 0
    reference, _ = run(backend, request_, stop_when=never)  # another backend, cold
    assert again.raw_output == reference.raw_output  # the kept embedding is photo 1's own


def test_stop_while_waiting_for_a_stopped_runs_photo_returns_at_once(
    fresh: LlamaCppBackend, request_: StoryRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(monkeypatch)
    run(fresh, request_, stop_when=encoding(1))
    loading = lambda e: isinstance(e, PhaseEvent) and e.phase is Phase.LOADING_MODEL  # noqa: E731
    second, latency = run(fresh, request_, stop_when=loading)
    assert second.finish_reason is FinishReason.CANCELLED and latency < 1.0
    assert not gate.finished.is_set()
    gate.open()
    join_vision_threads()


def test_closing_does_not_wait_and_the_projector_is_freed_after_the_encode(
    fresh: LlamaCppBackend,
    request_: StoryRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llama_cpp import mtmd_cpp

    gate = Gate(monkeypatch)
    real_free = mtmd_cpp.mtmd_free
    freed: list[bool] = []  # per free: was the encode using that projector done?

    def free(ctx: object) -> None:
        freed.append(gate.finished.is_set())
        real_free(ctx)

    monkeypatch.setattr(mtmd_cpp, "mtmd_free", free)
    run(fresh, request_, stop_when=encoding(1))
    started = time.perf_counter()
    fresh.close()  # the GUI closes on its own thread: this must not wait for the photo
    assert time.perf_counter() - started < 1.0 and freed == []
    gate.open()
    join_vision_threads()
    assert freed == [True]  # freed once, by the encode's thread, after the encode
    result, _ = run(fresh, request_, stop_when=never)  # a closed backend loads again
    assert result.finish_reason is not FinishReason.CANCELLED and result.raw_output
    assert fresh.photos_encoded == 2  # the closed run's photo was dropped, not filed


def test_a_stopped_runs_failed_encode_does_not_fail_the_next_run(
    fresh: LlamaCppBackend,
    request_: StoryRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate(monkeypatch, fail=True)
    run(fresh, request_, stop_when=encoding(1))
    gate.open()
    assert gate.finished.wait(10)
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger=photo_encoder.__name__):
        result, _ = run(fresh, request_, stop_when=never)
    assert result.finish_reason is not FinishReason.CANCELLED and result.raw_output
    assert fresh.photos_encoded == 2  # both encoded by this run
    assert "failed on 1.png after its run stopped" in caplog.text


# The child: the `storyteller` program, its vision encoder running the real encode over and over
# for 20 s, so that Ctrl-C lands while a photo is encoding. (On the 7B shape, where one encode is
# a single 36 s call into llama.cpp, the program used to die of a segmentation fault on the way
# out; the tiny model's encodes are too short to show that here.)
SLOW_CLI = """
import sys, time
from desktop_app.cli import console_main
from desktop_app.engine import photo_encoder

real = photo_encoder.llama_prompt.encode

def slow(*args):
    until = time.monotonic() + 20
    while True:
        embedding = real(*args)
        if time.monotonic() > until:
            return embedding

photo_encoder.llama_prompt.encode = slow
sys.argv = ["storyteller", *sys.argv[1:]]
console_main()
"""


def test_ctrl_c_while_a_photo_encodes_ends_the_program_at_once_and_cleanly(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-c", SLOW_CLI, "tell", str(album[0])]
    command += ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]
    env = {**os.environ, "STORYTELLER_HOME": str(tmp_path / "home")}
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        try:
            deadline = time.monotonic() + 60
            while "encoding photo" not in errors.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # well inside the 20 s encode
            child.send_signal(signal.SIGINT)
            interrupted = time.perf_counter()
            code = child.wait(timeout=15)
        finally:
            child.kill()
    seconds = time.perf_counter() - interrupted
    assert code == 130, errors.read_text()[-2000:]
    assert seconds < 5  # the encode had ~19 s to go
    assert "stopping" in errors.read_text()
