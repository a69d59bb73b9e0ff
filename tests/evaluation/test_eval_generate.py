"""``storyteller eval --generate`` end to end on the tiny model: three stories told, scored, resumed.

The tiny random model writes noise, so the scores mean nothing; these tests check what a user
running a long evaluation relies on: every story gets an output and a record of the sizes the
model saw, a second run tells only what is missing, and Ctrl-C keeps the finished stories.
"""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

pytest.importorskip("pyarrow", reason="the eval extra is not installed")
pytest.importorskip("nltk", reason="the eval extra is not installed")

from eval_helpers import analysis, png, story, write_split

from desktop_app.cli import main as cli_main
from desktop_app.cli import options as cli_options

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

BOX = (["0,0,40,40"], [("Paper boat", "10,10,50,50")])


@pytest.fixture
def split(tmp_path: Path, tiny_image: Path) -> Path:
    """Three stories: two frames, one frame (the fixture photo, 168x112), one frame (84x56)."""
    return write_split(
        tmp_path / "test.parquet",
        [
            ("s1", [png((56, 56)), png((84, 28), (200, 40, 40))], analysis([BOX, BOX]), story(2)),
            ("s2", [tiny_image.read_bytes()], analysis([BOX]), story(1)),
            ("s3", [png((84, 56), (20, 160, 90))], analysis([BOX]), story(1)),
        ],
    )


def generate(tiny_model: TinyModel, run: Path, split: Path, *extra: str) -> int:
    model = ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]
    options = ["--max-tokens", "6", "--seed", "3", *extra]
    return cli_main(["eval", str(run), "--reference", str(split), "--generate", *model, *options])


def test_generate_tells_every_story_then_scores_and_a_second_run_tells_only_the_missing(
    tiny_model: TinyModel, split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert generate(tiny_model, run, split, "--json") == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["stories_scored"] == 3 and data["missing"] == []
    assert "3 stories told, 0 already in" in captured.err
    assert sorted(p.name for p in run.iterdir()) == [
        "s1.json", "s1.txt", "s2.json", "s2.txt", "s3.json", "s3.txt"
    ]  # fmt: skip
    record = json.loads((run / "s1.json").read_text())
    assert [p["original_size"] for p in record["photos"]] == [[56, 56], [84, 28]]
    assert all(
        w % 28 == 0 and h % 28 == 0 for w, h in (p["prepared_size"] for p in record["photos"])
    )
    assert record["timings"]["generated_tokens"] > 0
    assert json.loads((run / "s2.json").read_text())["photos"][0]["prepared_size"] == [168, 112]

    kept = {name: (run / name).stat().st_mtime_ns for name in ("s1.txt", "s3.txt")}
    (run / "s2.txt").unlink()
    assert generate(tiny_model, run, split) == 0
    captured = capsys.readouterr()
    assert "1 story told, 2 already in" in captured.err
    assert f"3 of 3 reference stories scored (outputs: {run}, told by " in captured.out
    assert tiny_model.text_gguf.name in captured.out.splitlines()[0]
    assert (run / "s2.txt").exists()
    assert {name: (run / name).stat().st_mtime_ns for name in kept} == kept


def test_ctrl_c_keeps_the_stories_told_and_the_next_run_continues(
    tiny_model: TinyModel,
    split: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_tell = cli_options.tell_to_end
    calls = {"n": 0}

    def ctrl_c_during_the_second_story(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)  # what the terminal sends on Ctrl-C
        return real_tell(*args, **kwargs)

    monkeypatch.setattr(cli_options, "tell_to_end", ctrl_c_during_the_second_story)
    run = tmp_path / "run"
    assert generate(tiny_model, run, split, "-q") == 130
    err = capsys.readouterr().err
    assert "stopped; 1 story told this time, 1 of 3 are in" in err
    assert "Run the same command again to continue" in err
    assert sorted(p.name for p in run.iterdir()) == ["s1.json", "s1.txt"]  # nothing half-written

    monkeypatch.setattr(cli_options, "tell_to_end", real_tell)
    assert generate(tiny_model, run, split) == 0
    assert "2 stories told, 1 already in" in capsys.readouterr().err
    assert len(list(run.glob("*.txt"))) == 3


def test_a_story_the_model_cannot_tell_fails_alone_and_is_tried_again_next_time(
    tiny_model: TinyModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = png((84, 56))
    jpeg = io.BytesIO()
    Image.effect_noise((84, 56), 60).convert("RGB").save(jpeg, format="JPEG", quality=95)
    truncated = jpeg.getvalue()[:-400]  # its header gives a size; its pixels never decode
    split = write_split(
        tmp_path / "test.parquet",
        [
            ("s1", [whole], analysis([BOX]), story(1)),
            ("s2", [truncated], analysis([BOX]), story(1)),
            ("s3", [whole], analysis([BOX]), story(1)),
        ],
    )
    run = tmp_path / "run"
    assert generate(tiny_model, run, split) == 1  # scored, but not complete
    captured = capsys.readouterr()
    assert "storyteller: story s2 failed: story s2, frame 1.img is damaged" in captured.err
    assert "2 stories told, 1 story failed, 0 already in" in captured.err
    assert "2 of 3 reference stories scored" in captured.out
    assert "missing: 1 reference story has no output: s2" in captured.out
    assert sorted(p.name for p in run.glob("*.txt")) == ["s1.txt", "s3.txt"]
    assert generate(tiny_model, run, split) == 1
    assert "0 stories told, 1 story failed, 2 already in" in capsys.readouterr().err
