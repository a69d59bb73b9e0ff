"""The OpenAI-server backend against a real llama-cpp-python server on loopback (tiny model)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from desktop_app.cli import main as cli_main
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
from desktop_app.engine.server_backend import OpenAIServerBackend, ServerError, normalize_base_url
from desktop_app.story.parser import parse_story
from desktop_app.story.validate import validate

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

API_KEY = "tiny-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the tiny model; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(tiny_model.text_gguf),
        "--clip_model_path",
        str(tiny_model.mmproj_gguf),
        "--chat_format",
        "mtmd",
        "--logits_all",
        "false",
        "--n_ctx",
        "4096",
        "--api_key",
        API_KEY,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                request = urllib.request.Request(
                    f"{url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}
                )
                with urllib.request.urlopen(request, timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


def test_server_tells_a_strict_story_that_validates(server: str, photos: list[Path]) -> None:
    backend = OpenAIServerBackend(server, api_key=API_KEY)
    try:
        request = StoryRequest(
            photos=tuple(photos),
            sampling=SamplingParams(max_tokens=2500, seed=4),
            strict_format=True,
        )
        result, events = run(backend, request)
    finally:
        backend.close()
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
    server: str, photos: list[Path]
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


def test_server_errors_say_what_to_do(server: str, photos: list[Path]) -> None:
    request = StoryRequest(photos=(photos[0],), sampling=SamplingParams(max_tokens=4))
    with pytest.raises(ServerError, match="refused the API key"):
        run(OpenAIServerBackend(server, api_key="wrong"), request)
    with pytest.raises(ServerError, match=r"no model .* or no /v1/chat/completions"):
        run(OpenAIServerBackend(server + "/not-here", api_key=API_KEY, model="x"), request)
    with pytest.raises(ServerError, match=r"cannot reach the server at .* is it running"):
        run(OpenAIServerBackend(f"http://127.0.0.1:{free_port()}"), request)


def test_cancel_while_the_server_reads_the_prompt(server: str, photos: list[Path]) -> None:
    backend = OpenAIServerBackend(server, api_key=API_KEY)
    events: list[object] = []

    def reading() -> bool:
        return any(isinstance(e, PhaseEvent) and e.phase is Phase.READING_PROMPT for e in events)

    try:
        request = StoryRequest(photos=tuple(photos), sampling=SamplingParams(max_tokens=64))
        result = None
        for event in backend.generate(request, should_stop=reading):
            events.append(event)
            if isinstance(event, ResultEvent):
                result = event.result
        assert result is not None and result.finish_reason is FinishReason.CANCELLED
        assert result.raw_output == ""
        again, _ = run(backend, request)
        assert again.finish_reason is not FinishReason.CANCELLED and again.raw_output
    finally:
        backend.close()
