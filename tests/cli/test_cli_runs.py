"""What ``tell`` and ``album tell`` share through app/: the photo guard, the zero-token rule, the
one parameter shape in the JSON, and the real token count behind speed and time left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from library_helpers import STORY_TEXT, distinct_photos
from made_photos import huge_png
from PIL import Image

from desktop_app.app.estimates import RunProgress, run_clock
from desktop_app.app.telling import TellOptions
from desktop_app.cli import main
from desktop_app.cli import options as cli_options
from desktop_app.engine.api import (
    Detail,
    Event,
    FinishReason,
    Phase,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    ShouldStop,
    StoryRequest,
    Timings,
    TokenEvent,
)
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.engine.speeds import Speeds
from desktop_app.library import Library, RunSpec

if TYPE_CHECKING:
    from tests.conftest import TinyModel

REPO_ROOT = Path(__file__).resolve().parents[2]
TOO_LARGE = "is too large to open safely: resize it below 90 megapixels"


def storyteller(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """The real ``storyteller`` program in a child process (the user's view: no traceback)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )


def model_args(tiny_model: TinyModel) -> list[str]:
    return ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]


@pytest.mark.slow
def test_a_400_megapixel_photo_gets_the_same_refusal_from_tell_add_and_album_tell(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    big = huge_png(tmp_path / "big.png")
    assert big.stat().st_size < 200_000  # the file is small: only its header is the problem
    told = storyteller("tell", big, *model_args(tiny_model), "--max-tokens", "4")
    assert told.returncode == 1, told.stderr
    assert f"big.png {TOO_LARGE}" in told.stderr and "Traceback" not in told.stderr

    library = ["album", "--library", tmp_path / "lib"]
    assert storyteller(*library, "new", "Big").returncode == 0
    added = storyteller(*library, "add", "Big", big)
    assert added.returncode == 1 and f"big.png {TOO_LARGE}" in added.stderr

    # A photo that grew after it was added: the library's facts no longer hold.
    grows = Image.new("RGB", (56, 56), (10, 120, 60))
    grows.save(tmp_path / "grows.png")
    assert storyteller(*library, "add", "Big", tmp_path / "grows.png").returncode == 0
    huge_png(tmp_path / "grows.png")
    tell = storyteller(*library, "tell", "Big", *model_args(tiny_model), "--max-tokens", "4")
    assert tell.returncode == 1, tell.stderr
    assert f"grows.png {TOO_LARGE}" in tell.stderr and "Traceback" not in tell.stderr
    assert "failed before the model wrote anything: it is not kept" in tell.stderr
    stories = storyteller(*library, "stories", "Big", "--json")
    assert json.loads(stories.stdout)["stories"] == []


@pytest.mark.slow
def test_runs_stopped_before_their_first_token_print_why_keep_nothing_and_exit_130(
    tiny_model: TinyModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photos = distinct_photos(tmp_path / "p", 1)
    library = ["album", "--library", str(tmp_path / "lib")]
    main([*library, "new", "Rain"])
    main([*library, "add", "Rain", *map(str, photos)])
    monkeypatch.setattr(cli_options.StopOnCtrlC, "__call__", lambda self: True)  # Ctrl-C at once
    capsys.readouterr()
    assert main(["tell", *map(str, photos), *model_args(tiny_model), "-q"]) == 130
    captured = capsys.readouterr()
    assert "stopped before the model wrote anything: no story" in captured.err
    assert captured.out == ""

    assert main([*library, "tell", "Rain", *model_args(tiny_model), "-q"]) == 130
    captured = capsys.readouterr()
    assert "story 1 stopped before the model wrote anything: it is not kept" in captured.err
    assert captured.out == ""
    main([*library, "stories", "Rain", "--json"])
    assert json.loads(capsys.readouterr().out)["stories"] == []


def test_tell_album_tell_and_album_story_print_one_parameter_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_options, "backend_from_args", lambda args: ReplayBackend(STORY_TEXT))
    photos = [str(p) for p in distinct_photos(tmp_path / "p", 2)]
    options = ["--seed", "5", "--preset", "faithful", "--detail", "more", "--max-tokens", "300"]
    assert main(["tell", *photos, *options, "--format", "json", "-q"]) == 0
    told = json.loads(capsys.readouterr().out)

    library = ["album", "--library", str(tmp_path / "lib")]
    main([*library, "new", "Rain"])
    main([*library, "add", "Rain", *photos])
    capsys.readouterr()
    assert main([*library, "tell", "Rain", *options, "--format", "json", "-q"]) == 0
    album_told = json.loads(capsys.readouterr().out)
    assert main([*library, "story", "Rain", "--json"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert main([*library, "stories", "Rain", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["stories"]

    expected = {
        "preset": "faithful",
        "detail": "more",
        "token_budget": 512,
        "sampling": {"temperature": 0.2, "top_p": 0.8, "max_tokens": 300, "seed": 5},
        "strict_format": False,
        "instruction": "Create a story based on these images.",
    }
    assert told["run"]["parameters"] == expected
    assert album_told["run"]["parameters"] == stored["parameters"] == expected
    assert listed["parameters"] == expected
    assert told["format"] == album_told["format"] == stored["format"] == 2


def test_an_old_flat_run_prints_in_the_one_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library = Library.open(tmp_path / "lib")
    library.create_album("Old")
    library.add_photos("Old", distinct_photos(tmp_path / "p", 1))
    photo_ids = tuple(p.id for p in library.photos("Old"))
    flat = {"preset": "creative", "detail": "normal", "temperature": 0.7, "top_p": 0.9, "seed": 4}
    library.stop_run(library.start_run("Old", RunSpec(photo_ids, parameters=flat)))
    library.close()
    assert main(["album", "--library", str(tmp_path / "lib"), "story", "Old", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == 2
    assert printed["parameters"]["sampling"] == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": None,
        "seed": 4,
    }
    assert printed["parameters"]["preset"] == "creative" and "seed" not in printed["parameters"]


# -- the real token count --------------------------------------------------------------------

# Byte-level tokens: each UTF-8 byte of this text is one token, so a character of Japanese text
# arrives as one text event worth three tokens.
MULTI_BYTE_TEXT = "雨の日、マヤは水たまりで笑った。" * 4


class ByteTokenReplay:
    """Replays ``MULTI_BYTE_TEXT`` one character per event, each worth its UTF-8 bytes in tokens
    (as llama.cpp reports a character completed by several byte tokens)."""

    description = "byte-token replay"

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        yield PhaseEvent(Phase.WRITING)
        for character in MULTI_BYTE_TEXT:
            yield TokenEvent(character, tokens=len(character.encode("utf-8")))
        timings = Timings(generated_tokens=len(MULTI_BYTE_TEXT.encode("utf-8")))
        yield ResultEvent(
            RunResult(MULTI_BYTE_TEXT, FinishReason.STOP, (), request.sampling, "r", "r", timings)
        )

    def close(self) -> None:
        pass


class FakeTime:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_and_time_left_count_real_tokens_on_multi_byte_text(tmp_path: Path) -> None:
    rates = Speeds(encode_s_per_token=0.01, prefill_tokens_per_s=50.0, decode_tokens_per_s=10.0)
    time = FakeTime()
    clock = run_clock(rates, [(56, 56)], Detail.AS_TRAINED, 1000)
    assert clock is not None
    clock.clock = time  # the clock's own time: only what the events do moves it
    progress = cli_options.Progress(False, 1000)
    progress.run = RunProgress(clock, now=time)
    events: list[TokenEvent] = []

    def on_event(event: object) -> None:
        time.now += 0.1  # every event, 0.1 s later
        if isinstance(event, TokenEvent):
            events.append(event)

    options = TellOptions(sampling=SamplingParams(max_tokens=1000))
    told = cli_options.tell_to_end(
        ByteTokenReplay(), options, [tmp_path / "a.png"], progress=progress, on_event=on_event
    )
    real = len(MULTI_BYTE_TEXT.encode("utf-8"))
    assert len(events) == len(MULTI_BYTE_TEXT) < real  # fewer text events than tokens
    assert progress.run.tokens == clock.tokens == told.tokens == real
    # The speed is the real tokens over the time since the first one, not one per event.
    first = progress.run.first_token_at
    assert first is not None
    assert progress.run.tokens_per_s() == pytest.approx((real - 1) / (time.now - first))
    # Time left counts down by real tokens too: what is left of the likely story's length.
    expected = min(1000, max(clock.plan.new_tokens, real + 32))
    assert progress.run.remaining_s() == pytest.approx((expected - real) / clock._decode_rate())


@pytest.mark.slow
def test_the_time_line_and_bars_of_tell_come_from_one_plan(
    tiny_model: TinyModel,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from desktop_app.app import estimates

    plans: list[Any] = []
    real_plan_run = estimates.plan_run

    def recorded(*args: Any, **kwargs: Any) -> Any:
        plans.append(real_plan_run(*args, **kwargs))
        return plans[-1]

    monkeypatch.setattr(estimates, "plan_run", recorded)
    photos = [str(p) for p in distinct_photos(tmp_path / "p", 2)]
    code = main(["tell", *photos, *model_args(tiny_model), "--max-tokens", "6", "--seed", "1"])
    assert code == 0
    err = capsys.readouterr().err
    (plan,) = plans
    assert plan.photos == 2 and plan.clock is not None
    assert f"storyteller: {plan.time_line()}" in err
    assert "for 2 photos at As trained" in err
