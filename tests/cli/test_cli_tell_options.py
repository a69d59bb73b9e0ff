"""The story commands' shared options (``cli/options.py``): what the command line, the settings
and the presets decide; progress bars and Ctrl-C."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.app.settings import Settings, save_settings
from desktop_app.app.telling import TellOptions
from desktop_app.cli import options as cli_options
from desktop_app.engine.api import (
    DEFAULT_INSTRUCTION,
    TRAINED_INSTRUCTIONS,
    Detail,
    Event,
    FinishReason,
    Phase,
    PhaseEvent,
    Preset,
    ResultEvent,
    RunResult,
    SamplingParams,
    ShouldStop,
    StoryRequest,
    Timings,
    TokenEvent,
    is_trained_instruction,
)
from desktop_app.errors import StorytellerError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_options.add_tell_options(parser)
    return parser.parse_args(list(argv))


def request_from_args(args: argparse.Namespace, photos: list[Path]) -> StoryRequest:
    return cli_options.options_from_args(args).request(photos)


def test_defaults_are_the_model_card_and_the_trained_detail_and_instruction() -> None:
    request = request_from_args(parse(), [Path("a.jpg"), Path("b.jpg")])
    assert request.photos == (Path("a.jpg"), Path("b.jpg"))
    assert (request.sampling.temperature, request.sampling.top_p) == (0.7, 0.9)
    assert request.sampling.max_tokens == 4096 and request.sampling.seed is None
    assert request.detail is Detail.AS_TRAINED and not request.strict_format
    assert request.detail.token_budget == 256  # the budget closest to the training frames
    assert request.instruction == DEFAULT_INSTRUCTION == "Create a story based on these images."


def test_settings_fill_in_what_the_command_line_leaves_out() -> None:
    save_settings(
        Settings(
            detail=Detail.MOST, preset=Preset.FAITHFUL, seed=9, max_tokens=2000, strict_format=True
        )
    )
    request = request_from_args(parse("--temperature", "0.5"), [Path("a.jpg")])
    assert request.detail is Detail.MOST and request.strict_format
    assert (request.sampling.temperature, request.sampling.top_p) == (0.5, 0.8)
    assert (request.sampling.seed, request.sampling.max_tokens) == (9, 2000)
    overridden = request_from_args(
        parse("--detail", "more", "--preset", "creative", "--seed", "1", "--max-tokens", "64"),
        [Path("a.jpg")],
    )
    assert overridden.detail is Detail.MORE
    assert (overridden.sampling.temperature, overridden.sampling.seed) == (0.7, 1)
    assert overridden.sampling.max_tokens == 64


@pytest.mark.parametrize(
    ("old", "budget"),
    [("low", 256), ("normal", 512), ("high", 1024)],
    ids=["low", "normal", "high"],
)
def test_the_old_detail_names_still_work_with_their_budgets(old: str, budget: int) -> None:
    request = request_from_args(parse("--detail", old), [Path("a.jpg")])
    assert request.detail.token_budget == budget
    assert Detail(old) is request.detail  # settings files that stored the old name too


def test_no_instruction_and_any_trained_one_can_be_chosen() -> None:
    none = request_from_args(parse("--instruction", ""), [Path("a.jpg")])
    assert none.instruction == "" and is_trained_instruction("")
    chosen = TRAINED_INSTRUCTIONS[4]
    request = request_from_args(parse("--instruction", chosen), [Path("a.jpg")])
    assert request.instruction == chosen and is_trained_instruction(chosen)
    assert not is_trained_instruction("Write a poem about my cat.")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--top-p", "0"), "--top-p must be in"),
        (("--temperature", "-1"), "--temperature cannot be negative"),
        (("--max-tokens", "0"), "--max-tokens must be at least 1"),
    ],
)
def test_impossible_sampling_is_refused(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(StorytellerError, match=message):
        request_from_args(parse(*argv), [Path("a.jpg")])


def test_mmproj_alone_is_refused_and_server_wins_over_settings_model(tmp_path: Path) -> None:
    with pytest.raises(StorytellerError, match="--mmproj needs --model"):
        cli_options.backend_from_args(parse("--mmproj", str(tmp_path / "m.gguf")))
    save_settings(Settings(model_path=tmp_path / "x.gguf", mmproj_path=tmp_path / "mmproj.gguf"))
    backend = cli_options.backend_from_args(parse("--server", "http://127.0.0.1:9"))
    assert backend.description == "server http://127.0.0.1:9/v1"
    backend.close()


def test_first_ctrl_c_asks_to_stop_and_the_second_aborts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = signal.getsignal(signal.SIGINT)
    with cli_options.StopOnCtrlC() as stop:
        assert not stop()
        signal.raise_signal(signal.SIGINT)
        assert stop()  # the run stops at its next check and keeps what it wrote
        assert "Ctrl-C again to abort" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


class _Backend:
    """Writes "a", then "é" completed by its second token, then a token with no text."""

    description = "test"

    def __init__(self, finish: FinishReason) -> None:
        self.finish = finish

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        yield PhaseEvent(Phase.WRITING)
        yield TokenEvent("a")
        yield TokenEvent("é", tokens=2)
        result = RunResult(
            "aé",
            self.finish,
            (),
            request.sampling,
            "test",
            "test",
            Timings(generated_tokens=4),
        )
        yield ResultEvent(result)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("finish", "final_bar"),
    [(FinishReason.STOP, "4/4"), (FinishReason.CANCELLED, "4/60")],
)
def test_the_writing_bar_counts_tokens_and_closes_at_the_final_count(
    finish: FinishReason, final_bar: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = TellOptions(sampling=SamplingParams(max_tokens=60))
    progress = cli_options.Progress(True, 60)
    cli_options.tell_to_end(_Backend(finish), options, [Path("a.jpg")], progress=progress)
    last_draw = capsys.readouterr().err.strip().split("\r")[-1]
    assert last_draw.startswith("writing") and f" {final_bar} " in last_draw


class _StoppedWhileEncoding:
    """Prepares two photos, starts encoding the second, and is stopped there."""

    description = "test"

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        yield PhaseEvent(Phase.PREPARING_PHOTO, 1, 2)
        yield PhaseEvent(Phase.PREPARING_PHOTO, 2, 2)
        yield PhaseEvent(Phase.ENCODING_PHOTO, 1, 2)
        yield PhaseEvent(Phase.ENCODING_PHOTO, 2, 2)
        result = RunResult("", FinishReason.CANCELLED, (), request.sampling, "test", "test")
        yield ResultEvent(result)

    def close(self) -> None:
        pass


def test_photo_bars_count_photos_done_not_begun(capsys: pytest.CaptureFixture[str]) -> None:
    progress = cli_options.Progress(True, TellOptions().sampling.max_tokens)
    backend = _StoppedWhileEncoding()
    cli_options.tell_to_end(
        backend, TellOptions(), [Path("a.jpg"), Path("b.jpg")], progress=progress
    )
    err = capsys.readouterr().err
    preparing = [d for d in err.split("\r") if d.strip().startswith("preparing photo")]
    encoding = [d for d in err.split("\r") if d.strip().startswith("encoding photo")]
    assert " 2/2 " in preparing[-1]  # finished: the next phase began
    assert " 1/2 " in encoding[-1]  # stopped while photo 2 was encoding
