"""The OpenAI-server backend against the two real servers on loopback with the tiny model
(llama-cpp-python's and llama.cpp's own ``llama-server``), and against a scripted loopback server
for what a real one cannot be made to do on demand (tests/engine/loopback_server.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from loopback_server import HOLD, LoopbackServer
from PIL import Image
from server_processes import API_KEY, FLAVOURS, RunningServer, free_port, running_server

from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.cli import main as cli_main
from desktop_app.engine import server_backend
from desktop_app.engine.api import (
    FinishReason,
    Phase,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
    TokenEvent,
)
from desktop_app.engine.server_backend import (
    STRICT_UNSUPPORTED,
    OpenAIServerBackend,
    ServerError,
    ServerKind,
    normalize_base_url,
)
from desktop_app.library import Library, RunStatus
from desktop_app.story.parser import parse_story
from desktop_app.story.validate import validate

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

KINDS = {"llama-cpp-python": ServerKind.LLAMA_CPP_PYTHON, "llama-server": ServerKind.LLAMA_CPP}


def _start(
    request: pytest.FixtureRequest, flavour: str, model: TinyModel, folder: Path, **kwargs: int
) -> AbstractContextManager[RunningServer]:
    binary = request.getfixturevalue("llama_server_binary") if flavour == "llama-server" else None
    return running_server(flavour, model, folder, binary=binary, **kwargs)


@pytest.fixture(scope="module", params=FLAVOURS)
def running(
    request: pytest.FixtureRequest,
    tiny_model: TinyModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """Each real server in turn, with the tiny model, for the module's tests."""
    with _start(request, request.param, tiny_model, tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture(scope="module")
def server(running: RunningServer) -> str:
    return running.url


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("server-photos")
    Image.new("RGB", (112, 84), (200, 40, 40)).save(folder / "a.jpg")
    Image.new("RGB", (60, 100), (20, 160, 90)).save(folder / "b.png")
    return [folder / "a.jpg", folder / "b.png"]


def run(
    backend: OpenAIServerBackend, request: StoryRequest, stop_after_tokens: int = 0
) -> tuple[RunResult, list[object]]:
    events: list[object] = []
    result = None

    def should_stop() -> bool:
        tokens = sum(isinstance(e, TokenEvent) for e in events)
        return 0 < stop_after_tokens <= tokens

    for event in backend.generate(request, should_stop=should_stop):
        events.append(event)
        if isinstance(event, ResultEvent):
            result = event.result
    assert result is not None
    return result, events


def test_base_urls_are_normalised() -> None:
    assert normalize_base_url("127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("https://gpu.example/v1/") == "https://gpu.example/v1"


def _issues(result: RunResult) -> list[str]:
    story = parse_story(result.raw_output)
    sizes = {i: p.prepared_size for i, p in enumerate(result.photos, start=1)}
    return [i.code for i in validate(story, frame_count=len(sizes), image_sizes=sizes)]


def test_the_server_is_identified(running: RunningServer) -> None:
    backend = OpenAIServerBackend(running.url, api_key=API_KEY)
    try:
        info = backend.identify()
    finally:
        backend.close()
    assert info.kind is KINDS[running.flavour] and info.kind.takes_grammar
    assert "takes a grammar" in info.describe() and info.model


def test_server_tells_a_strict_story_that_validates(server: str, photos: list[Path]) -> None:
    backend = OpenAIServerBackend(server, api_key=API_KEY)
    try:
        request = StoryRequest(
            photos=tuple(photos),
            sampling=SamplingParams(max_tokens=2500, seed=4),
            strict_format=True,
        )
        result, events = run(backend, request)
        # The same request without the grammar: the tiny random model writes no story, so the
        # strict run's clean validation is the grammar's doing (the server applied it).
        loose_sampling = SamplingParams(max_tokens=300, seed=4)
        loose, _ = run(backend, StoryRequest(photos=request.photos, sampling=loose_sampling))
    finally:
        backend.close()
    assert [code for code in _issues(loose) if code != "unknown-id"] != []
    assert result.finish_reason is FinishReason.STOP
    assert result.backend == f"server {server}/v1"
    assert [p.prepared_size for p in result.photos] == [(112, 84), (56, 112)]
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert streamed == result.raw_output and result.timings.first_token_s > 0
    story = parse_story(result.raw_output)
    sizes = {i: p.prepared_size for i, p in enumerate(result.photos, start=1)}
    issues = validate(story, frame_count=2, image_sizes=sizes)
    # One grammar for both parts: the shape is guaranteed; a story id may be one a frame did
    # not define (servers cannot switch grammars mid-stream).
    assert [i.code for i in issues if i.code != "unknown-id"] == []
    assert [segment.image for segment in story.segments] == [1, 2]


def test_cancel_after_the_first_token_keeps_the_partial_output(
    running: RunningServer, server: str, photos: list[Path]
) -> None:
    backend = OpenAIServerBackend(server, api_key=API_KEY)
    try:
        request = StoryRequest(
            photos=tuple(photos), sampling=SamplingParams(max_tokens=200, seed=2)
        )
        result, events = run(backend, request, stop_after_tokens=1)
    finally:
        backend.close()
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert result.finish_reason is FinishReason.CANCELLED
    assert len(tokens) == 1 and result.raw_output == tokens[0]
    _assert_slots_free(running, photos)


def _assert_slots_free(running: RunningServer, photos: list[Path]) -> None:
    """The dropped connection freed the server: llama-server's /slots shows none busy, and
    either server tells the next story."""
    if running.flavour == "llama-server":
        deadline = time.monotonic() + 10
        while running.busy_slots():
            assert time.monotonic() < deadline, running.get("/slots")
            time.sleep(0.1)
    backend = OpenAIServerBackend(running.url, api_key=API_KEY)
    try:
        request = StoryRequest(photos=(photos[0],), sampling=SamplingParams(max_tokens=4))
        again, _ = run(backend, request)
    finally:
        backend.close()
    assert again.finish_reason is not FinishReason.CANCELLED and again.timings.generated_tokens


def test_tell_cli_with_server(server: str, photos: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "story.json"
    code = cli_main(
        [
            "tell",
            *map(str, photos),
            "--server",
            server,
            "--api-key",
            API_KEY,
            "--format",
            "json",
            "--out",
            str(out),
            "--max-tokens",
            "40",
            "--seed",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["run"]["backend"].startswith("server http://127.0.0.1")
    assert data["run"]["timings"]["generated_tokens"] > 0


def test_llama_cpps_own_timings_are_the_runs(
    running: RunningServer, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama-server measures its writing from the first generated token, visible or not; its
    # figures are the record's. llama-cpp-python's server sends none: the client's clock counts.
    seen: list[object] = []
    real = server_backend.server_timings

    def spy(chunk: object) -> object:
        seen.append(real(chunk))
        return seen[-1]

    monkeypatch.setattr(server_backend, "server_timings", spy)
    backend = OpenAIServerBackend(running.url, api_key=API_KEY)
    try:
        request = StoryRequest(photos=tuple(photos), sampling=SamplingParams(max_tokens=12))
        result, _ = run(backend, request)
    finally:
        backend.close()
    measured = [t for t in seen if t is not None]
    if running.flavour == "llama-cpp-python":
        assert measured == []
        return
    (timings,) = measured
    assert result.timings.generated_tokens == timings.generated_tokens == 12
    assert result.timings.generation_s == timings.generation_s > 0
    assert 0 < result.timings.prompt_eval_s == timings.prompt_s


def test_a_story_of_invisible_pieces_is_timed_by_the_server(photos: list[Path]) -> None:
    # A random-weight model (or one writing only control pieces) streams nothing visible: the
    # client's writing clock never starts, so without the server's timings the run would say
    # 0 s of writing and 0 tokens/s.
    final = {
        "usage": {"completion_tokens": 5, "prompt_tokens": 40, "total_tokens": 45},
        "timings": {"prompt_n": 40, "prompt_ms": 120.0, "predicted_n": 5, "predicted_ms": 250.0},
    }
    with LoopbackServer(owned_by="llamacpp", replies=[("",) * 5], final=final) as stub:
        backend = OpenAIServerBackend(stub.url)
        try:
            request = StoryRequest(photos=(photos[0],), sampling=SamplingParams(max_tokens=5))
            result, _ = run(backend, request)
        finally:
            backend.close()
    assert result.raw_output == ""
    assert result.timings.generated_tokens == 5 and result.timings.generation_s == 0.25
    assert result.timings.tokens_per_s == 20.0 and result.timings.prompt_eval_s == 0.12


def test_server_errors_say_what_to_do(server: str, photos: list[Path]) -> None:
    request = StoryRequest(photos=(photos[0],), sampling=SamplingParams(max_tokens=4))
    with pytest.raises(ServerError, match="refused the API key"):
        run(OpenAIServerBackend(server, api_key="wrong"), request)
    with pytest.raises(ServerError, match=r"no model .* or no /v1/chat/completions"):
        run(OpenAIServerBackend(server + "/not-here", api_key=API_KEY, model="x"), request)
    with pytest.raises(ServerError, match=r"cannot reach the server at .* is it running"):
        run(OpenAIServerBackend(f"http://127.0.0.1:{free_port()}"), request)


def test_cancel_while_the_server_reads_the_prompt(photos: list[Path]) -> None:
    # A server still reading a long prompt sends nothing: only the poll for should_stop between
    # empty waits can end the run. With it ignored, the run waits for the (3 s) timeout and
    # fails instead.
    events: list[object] = []

    def reading() -> bool:
        return any(isinstance(e, PhaseEvent) and e.phase is Phase.READING_PROMPT for e in events)

    with LoopbackServer(owned_by="llamacpp", replies=[HOLD, ("Once",)]) as stub:
        backend = OpenAIServerBackend(stub.url, timeout_s=3)
        try:
            request = StoryRequest(photos=tuple(photos), sampling=SamplingParams(max_tokens=64))
            started = time.monotonic()
            result = None
            for event in backend.generate(request, should_stop=reading):
                events.append(event)
                if isinstance(event, ResultEvent):
                    result = event.result
            stopped_after = time.monotonic() - started
            assert result is not None and result.finish_reason is FinishReason.CANCELLED
            assert result.raw_output == "" and len(stub.bodies) == 1
            assert stopped_after < 2.5
            stub.released.set()
            again, _ = run(backend, request)
        finally:
            backend.close()
    assert again.finish_reason is FinishReason.STOP and again.raw_output == "Once"


def test_a_server_that_dies_mid_story_leaves_a_failed_run_with_its_text(
    request: pytest.FixtureRequest,
    tiny_model: TinyModel,
    photos: list[Path],
    tmp_path: Path,
    flavour: str,
) -> None:
    library = Library.open(tmp_path / "library")
    library.create_album("trip")
    library.add_photos("trip", photos)
    tokens: list[str] = []
    with _start(request, flavour, tiny_model, tmp_path) as dying:
        backend = OpenAIServerBackend(dying.url, api_key=API_KEY)

        def kill_after_two_tokens(event: object) -> None:
            if isinstance(event, TokenEvent):
                tokens.append(event.text)
                if len(tokens) == 2:
                    dying.process.kill()
                    dying.process.wait()

        options = TellOptions(sampling=SamplingParams(max_tokens=3000, seed=3))
        try:
            with pytest.raises(ServerError):
                tell_album(library, "trip", backend, options, on_event=kill_after_two_tokens)
        finally:
            backend.close()
    (kept,) = library.runs("trip")
    library.close()
    assert kept.status is RunStatus.FAILED and kept.error
    assert len(tokens) >= 2 and kept.raw_output == "".join(tokens)


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


def test_vllm_gets_the_grammar_as_structured_outputs(photos: list[Path]) -> None:
    with LoopbackServer(owned_by="vllm", model="qwen-storyteller") as stub:
        backend = OpenAIServerBackend(stub.url)
        try:
            info = backend.identify()
            request = StoryRequest(
                photos=(photos[0],), sampling=SamplingParams(max_tokens=1000), strict_format=True
            )
            result, _ = run(backend, request)
        finally:
            backend.close()
    assert info.kind is ServerKind.VLLM and info.model == "qwen-storyteller"
    (body,) = stub.bodies
    assert "grammar" not in body and body["model"] == "qwen-storyteller"
    assert body["structured_outputs"]["grammar"].startswith("root ::=")
    assert result.raw_output == "Hello world"


def test_llama_cpp_is_known_by_its_props_whatever_its_models_say() -> None:
    props = {"default_generation_settings": {}, "build_info": "b1"}
    with LoopbackServer(owned_by="someone", props=props) as stub:
        backend = OpenAIServerBackend(stub.url)
        try:
            assert backend.identify().kind is ServerKind.LLAMA_CPP
        finally:
            backend.close()


def test_another_server_refuses_strict_format_before_the_run(photos: list[Path]) -> None:
    with LoopbackServer(owned_by="library") as stub:  # what Ollama says
        backend = OpenAIServerBackend(stub.url)
        try:
            request = StoryRequest(photos=(photos[0],), strict_format=True)
            with pytest.raises(ServerError, match=STRICT_UNSUPPORTED):
                run(backend, request)
            loose, _ = run(backend, StoryRequest(photos=(photos[0],)))
            info = backend.identify()
        finally:
            backend.close()
    assert len(stub.bodies) == 1 and "grammar" not in stub.bodies[0]
    assert info.kind is ServerKind.OTHER and "takes no grammar" in info.describe()
    assert loose.raw_output == "Hello world"
