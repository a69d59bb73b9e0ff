"""The embedded llama.cpp backend end to end, on the converter's tiny random model.

The tiny model writes noise, so these tests check what a user notices regardless of the words:
sizes and boxes line up with the photos, strict format always validates, cancel keeps the partial
story, a second run of the same album skips the vision encoder, problems surface before work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from desktop_app.cli import main as cli_main
from desktop_app.cli import options as cli_options
from desktop_app.engine import costs
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
from desktop_app.engine.images import UnusablePhotosError
from desktop_app.engine.llama_backend import LlamaCppBackend
from desktop_app.errors import StorytellerError
from desktop_app.story.parser import parse_story
from desktop_app.story.trained_layout import render_trained
from desktop_app.story.validate import validate

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small photos: a landscape JPEG stored sideways (EXIF 6), a PNG, a WebP."""
    folder = tmp_path_factory.mktemp("album")
    sideways = Image.new("RGB", (112, 84), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(folder / "1-sideways.jpg", exif=exif, quality=95)
    Image.linear_gradient("L").resize((100, 60)).convert("RGB").save(folder / "2-wide.png")
    Image.new("RGB", (56, 90), (20, 160, 90)).save(folder / "3-small.webp")
    return [folder / "1-sideways.jpg", folder / "2-wide.png", folder / "3-small.webp"]


def run(
    backend: LlamaCppBackend, request: StoryRequest, stop_when: object = None
) -> tuple[RunResult, list[object]]:
    events: list[object] = []
    stop = {"now": False}

    def should_stop() -> bool:
        return stop["now"]

    result = None
    for event in backend.generate(request, should_stop=should_stop):
        events.append(event)
        if stop_when is not None and stop_when(event):
            stop["now"] = True
        if isinstance(event, ResultEvent):
            result = event.result
    assert result is not None
    return result, events


def tell(tiny_model: TinyModel, photos: list[Path], *options: str) -> int:
    """``storyteller tell PHOTOS --model TINY --mmproj TINY OPTIONS``; its exit code."""
    model = ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]
    return cli_main(["tell", *map(str, photos), *model, *options])


def test_tell_writes_a_story_json_with_the_photo_sizes(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "story.json"
    options = ["--format", "json", "--out", str(out), "--max-tokens", "48", "--seed", "5", "-q"]
    code = tell(tiny_model, album, *options)
    assert code == 0
    data = json.loads(out.read_text())
    photos = data["run"]["photos"]
    assert [Path(p["path"]).name for p in photos] == [p.name for p in album]
    assert photos[0]["original_size"] == [84, 112]  # EXIF 6: upright is portrait
    assert photos[0]["prepared_size"] == [84, 112]
    assert photos[1]["original_size"] == [100, 60] and photos[1]["prepared_size"] == [112, 56]
    for photo in photos:
        width, height = photo["prepared_size"]
        assert width % 28 == 0 and height % 28 == 0
        assert photo["tokens"] == (width // 28) * (height // 28)
    assert data["run"]["parameters"]["sampling"]["seed"] == 5
    assert data["run"]["backend"] == "llama.cpp (CPU)"
    assert data["run"]["timings"]["generated_tokens"] > 0
    assert {"frames", "story", "issues", "complete"} <= set(data)


def test_strict_format_output_always_validates(backend: LlamaCppBackend, album: list[Path]) -> None:
    for seed in (1, 2):
        request = StoryRequest(
            photos=tuple(album[:2]),
            sampling=SamplingParams(max_tokens=2500, seed=seed),
            strict_format=True,
        )
        result, _ = run(backend, request)
        assert result.finish_reason is FinishReason.STOP
        story = parse_story(result.raw_output)
        sizes = {i: p.prepared_size for i, p in enumerate(result.photos, start=1)}
        assert validate(story, frame_count=2, image_sizes=sizes) == []
        assert [frame.index for frame in story.frames] == [1, 2]
        assert [segment.image for segment in story.segments] == [1, 2]
        # Exactly the trained layout: the renderer of docs/model-contract.md section 3 writes the same bytes.
        assert render_trained(story) == result.raw_output


def test_strict_format_refuses_a_budget_too_small(
    backend: LlamaCppBackend, album: list[Path]
) -> None:
    request = StoryRequest(
        photos=tuple(album), sampling=SamplingParams(max_tokens=200), strict_format=True
    )
    with pytest.raises(StorytellerError, match="--strict-format needs --max-tokens of at least"):
        run(backend, request)


def test_cancel_after_the_first_token_keeps_the_partial_output(
    backend: LlamaCppBackend, album: list[Path]
) -> None:
    request = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=64, seed=3))
    result, events = run(backend, request, stop_when=lambda e: isinstance(e, TokenEvent))
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert result.finish_reason is FinishReason.CANCELLED and result.cancelled
    assert len(tokens) == 1 and result.raw_output == tokens[0] != ""


def test_token_events_carry_every_generated_token(
    backend: LlamaCppBackend, album: list[Path]
) -> None:
    request = StoryRequest(photos=tuple(album[:1]), sampling=SamplingParams(max_tokens=60, seed=1))
    result, events = run(backend, request)
    pieces = [e for e in events if isinstance(e, TokenEvent)]
    # The random model writes byte tokens that are only part of a character: fewer pieces than
    # tokens, yet the pieces account for every token (what the progress bar counts).
    assert len(pieces) < result.timings.generated_tokens == 60
    assert sum(piece.tokens for piece in pieces) == 60
    assert "".join(piece.text for piece in pieces) == result.raw_output


def test_cancel_while_reading_the_prompt_stops_and_the_backend_still_works(
    backend: LlamaCppBackend, album: list[Path]
) -> None:
    request = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=8, seed=3))
    reading = lambda e: isinstance(e, PhaseEvent) and e.phase is Phase.READING_PROMPT  # noqa: E731
    result, events = run(backend, request, stop_when=reading)
    assert result.finish_reason is FinishReason.CANCELLED and result.raw_output == ""
    assert not any(isinstance(e, TokenEvent) for e in events)
    again, _ = run(backend, request)
    assert again.finish_reason is not FinishReason.CANCELLED and again.raw_output


def test_a_second_run_of_the_same_album_skips_the_vision_encoder(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    request = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=24, seed=11))
    first_backend = LlamaCppBackend(
        tiny_model.text_gguf, tiny_model.mmproj_gguf, cache_dir=tmp_path / "cache"
    )
    try:
        first, events = run(first_backend, request)
        assert first_backend.photos_encoded == 3
        assert all(seconds > 0 for seconds in first.timings.encode_s)
        second, _ = run(first_backend, request)
        assert first_backend.photos_encoded == 3  # memory cache: nothing encoded again
        assert second.timings.encode_s == (0.0, 0.0, 0.0)
        assert second.raw_output == first.raw_output  # same seed, same embeddings
    finally:
        first_backend.close()
    # A new process (new backend) reads the embeddings back from the disk cache.
    later = LlamaCppBackend(
        tiny_model.text_gguf, tiny_model.mmproj_gguf, cache_dir=tmp_path / "cache"
    )
    try:
        third, _ = run(later, request)
        assert later.photos_encoded == 0
        assert third.raw_output == first.raw_output
    finally:
        later.close()
    assert [e.describe() for e in events if isinstance(e, PhaseEvent)][:4] == [
        "preparing photo 1/3",
        "preparing photo 2/3",
        "preparing photo 3/3",
        "loading model",
    ]


def test_a_bad_photo_is_reported_before_the_model_loads(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    engine = LlamaCppBackend(tiny_model.text_gguf, tiny_model.mmproj_gguf, cache_dir=tmp_path)
    request = StoryRequest(photos=(album[0], broken), sampling=SamplingParams(max_tokens=8))
    with pytest.raises(UnusablePhotosError, match=r"broken\.jpg"):
        run(engine, request)
    assert engine._loaded is None


def test_a_context_too_small_fails_before_any_work(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    engine = LlamaCppBackend(
        tiny_model.text_gguf, tiny_model.mmproj_gguf, n_ctx=256, cache_dir=tmp_path
    )
    request = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=4096))
    with pytest.raises(StorytellerError, match="raise n_ctx"):
        run(engine, request)
    assert engine._loaded is None
    too_long = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=100_000))
    with pytest.raises(StorytellerError, match="the model holds at most 8192"):
        run(
            LlamaCppBackend(tiny_model.text_gguf, tiny_model.mmproj_gguf, cache_dir=tmp_path),
            too_long,
        )


def test_a_run_the_computer_cannot_hold_is_refused_before_loading(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(costs, "physical_memory_bytes", lambda: 256 * 2**20)
    engine = LlamaCppBackend(tiny_model.text_gguf, tiny_model.mmproj_gguf, cache_dir=tmp_path)
    request = StoryRequest(photos=tuple(album), sampling=SamplingParams(max_tokens=64))
    with pytest.raises(StorytellerError, match=r"GiB of memory .* this computer has 0\.2 GiB"):
        run(engine, request)
    assert engine._loaded is None


def test_verify_sha256_refuses_a_damaged_model(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model.directory, copy)
    text = copy / tiny_model.text_gguf.name
    damaged = bytearray(text.read_bytes())
    damaged[-1] ^= 0xFF  # same size: only the hash can tell
    text.write_bytes(bytes(damaged))
    argv = ["tell", str(album[0]), "--model", str(text), "--max-tokens", "4", "-q"]
    assert cli_main([*argv, "--verify-sha256"]) == 1
    assert f"{text.name} has sha256" in capsys.readouterr().err


def test_ctrl_c_keeps_the_partial_story_in_out(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens_seen = []
    original_event = cli_options.Progress.event

    def event(self: cli_options.Progress, item: object) -> None:
        if isinstance(item, TokenEvent):
            tokens_seen.append(item.text)
        original_event(self, item)

    # The first Ctrl-C arrives after three tokens (what the SIGINT handler does).
    monkeypatch.setattr(cli_options.Progress, "event", event)
    monkeypatch.setattr(cli_options.StopOnCtrlC, "__call__", lambda self: len(tokens_seen) >= 3)
    out = tmp_path / "partial.json"
    code = tell(tiny_model, album, "--format", "json", "--out", str(out), "--max-tokens", "64")
    assert code == 130
    data = json.loads(out.read_text())
    assert data["run"]["finish_reason"] == "cancelled"
    assert data["run"]["raw_output"] == "".join(tokens_seen[:3])


def test_html_output_shows_each_photo_beside_its_frame(
    tiny_model: TinyModel, album: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "story.html"
    options = ["--format", "html", "--out", str(out), "--max-tokens", "2500", "--strict-format"]
    assert tell(tiny_model, album[:2], *options, "-q") == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/jpeg;base64,") == 2


def test_the_model_sees_the_photos(backend: LlamaCppBackend, tmp_path: Path) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (112, 112), (255, 0, 0)).save(red)
    Image.new("RGB", (112, 112), (0, 0, 255)).save(blue)
    greedy = SamplingParams(temperature=0.0, max_tokens=24)
    outputs = [
        run(backend, StoryRequest(photos=(photo,), sampling=greedy))[0].raw_output
        for photo in (red, blue, red)
    ]
    assert outputs[0] == outputs[2]  # greedy and cached: the same photo, the same words
    assert outputs[0] != outputs[1]  # another photo, another story
