"""``storyteller eval``: reading reference sets and run folders, and the scores it prints.

Frames are 100x100 unless a test says otherwise, so box pixels are percentages; the expected
numbers are worked out by hand in each test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="the eval extra is not installed")
pytest.importorskip("nltk", reason="the eval extra is not installed")

from eval_helpers import analysis, output, png, story, write_split

from desktop_app.cli import main as cli_main
from desktop_app.evaluation.references import EvalError, ReferenceSet

MAYA = (["0,0,40,40"], [("Red ball", "50,50,100,100")])
SHIFTED = (["14,0,54,40"], [("Red ball", "50,50,100,100")])  # IoU 26/54: the character misses


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """Three one-frame stories a, b, c (100x100 frames) and one two-frame story w (200x100)."""
    frame = png((100, 100))
    return write_split(
        tmp_path / "test-00000-of-00001.parquet",
        [
            ("a", [frame], analysis([MAYA]), story(1)),
            ("b", [frame], analysis([MAYA]), story(1)),
            ("c", [frame], analysis([MAYA]), story(1)),
            ("w", [png((200, 100)), png((200, 100))], analysis([MAYA, MAYA]), story(2)),
        ],
    )


def eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert cli_main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_parquet_reader_gives_ids_texts_and_frame_sizes(split: Path) -> None:
    references = ReferenceSet(split)
    assert len(references) == 4
    stories = list(references.stories())
    assert [s.story_id for s in stories] == ["a", "b", "c", "w"]
    assert stories[3].frame_sizes == ((200, 100), (200, 100))
    assert stories[3].frame_count == 2
    assert stories[0].text.startswith("<think>\n## Image 1\n")
    assert "</think>\n<gdi image1>" in stories[0].text
    assert stories[0].frames[0].data is None  # sizes only, unless the frames are wanted
    with_images = next(ReferenceSet(split.parent).stories(with_images=True))
    assert with_images.frames[0].data == png((100, 100))


def test_frames_stored_as_plain_bytes_are_read_too(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "plain.parquet"
    columns = {
        "story_id": ["s1"],
        "images": pa.array([[png((84, 56))]], pa.list_(pa.binary())),
        "frame_count": [1],
        "chain_of_thought": [analysis([MAYA])],
        "story": [story(1)],
    }
    pq.write_table(pa.table(columns), path)
    [reference] = ReferenceSet(path).stories()
    assert reference.frame_sizes == ((84, 56),)


def test_a_parquet_without_the_split_columns_is_refused_by_name(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"story_id": ["a"], "story": ["x"]}), path)
    with pytest.raises(EvalError, match="no column images, frame_count, chain_of_thought"):
        ReferenceSet(path)


def test_a_corrupt_parquet_and_a_missing_folder_say_what_to_do(tmp_path: Path) -> None:
    broken = tmp_path / "test.parquet"
    broken.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(EvalError, match=r"not a readable parquet file .*download it again"):
        ReferenceSet(broken)
    with pytest.raises(EvalError, match="does not exist"):
        ReferenceSet(tmp_path / "nowhere")


def test_a_folder_holding_several_splits_is_refused(split: Path) -> None:
    (split.parent / "train-00000-of-00002.parquet").write_bytes(split.read_bytes())
    with pytest.raises(EvalError, match=r"holds the test, train splits: give one split's"):
        ReferenceSet(split.parent)


def test_a_corrupt_frame_names_its_story_and_frame(tmp_path: Path) -> None:
    path = write_split(tmp_path / "t.parquet", [("s1", [b"not an image"], analysis([MAYA]), "")])
    with pytest.raises(EvalError, match=r"t\.parquet, story s1, frame 1 is not a readable image"):
        list(ReferenceSet(path).stories())


def test_eval_scores_a_run_against_the_split_and_lists_the_stories_left_out(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.txt").write_text(output([MAYA]))  # perfect
    (run / "b.txt").write_text(output([SHIFTED]))  # character missed, object found
    (run / "w.txt").write_text(output([MAYA, MAYA]))  # perfect, on 200x100 frames
    (run / "zz.txt").write_text(output([MAYA]))  # no such reference story
    data = eval_json(capsys, str(run), "--reference", str(split))
    assert data["stories_scored"] == 3 and data["reference_stories"] == 4
    assert data["missing"] == ["c"] and data["unknown"] == ["zz"]
    metrics = data["metrics"]
    assert metrics["Char. Precision"] == pytest.approx(2 / 3)  # 1, 0, 1
    assert metrics["Obj. Recall"] == 1.0
    assert metrics["Precision"] == pytest.approx((1 + 0.5 + 1) / 3)
    # AP: 1, then 6 recall points at precision 0.5 of 11 for b ([miss, hit] over 2 boxes), 1.
    assert metrics["mAP"] == pytest.approx((1 + 3 / 11 + 1) / 3)
    assert metrics["ROUGE-L"] == 1.0  # the same story text everywhere
    assert [s["story_id"] for s in data["stories"]] == ["a", "b", "w"]
    assert data["stories"][1]["character_recall"] == 0.0
    assert data["meteor"].startswith("METEOR 1.5 formula on nltk ")


def test_the_table_shows_the_published_numbers_and_the_missing_stories(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.txt").write_text(output([MAYA]))
    assert cli_main(["eval", str(run), "--reference", str(split), "--stories"]) == 0
    text = capsys.readouterr().out
    assert "1 of 4 reference stories scored" in text
    assert "mAP" in text and "published" in text
    assert "0.054" in text.splitlines()[2 + 13]  # BLEU-4, with the published 0.054
    assert "missing: 3 reference stories have no output: b, c, w" in text
    assert "METEOR: METEOR 1.5 formula on nltk " in text
    story_rows = [line for line in text.splitlines() if line.startswith("a ")]
    assert len(story_rows) == 1 and story_rows[0].split()[1:3] == ["1.000", "1.000"]


def test_recorded_prepared_sizes_normalise_the_model_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The model saw the 100x100 frame at 250x100: its box 0,0,100,40 is the reference's 0,0,40,40.
    refs = write_split(
        tmp_path / "t.parquet", [("s1", [png((100, 100))], analysis([(["0,0,40,40"], [])]), "")]
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "s1.txt").write_text(output([(["0,0,100,40"], [])]))
    # Without a record the box is taken in the frame's pixels: IoU 1600/4000, no match.
    assert eval_json(capsys, str(run), "-r", str(refs))["metrics"]["Char. Recall"] == 0.0
    record = {"photos": [{"prepared_size": [250, 100]}]}
    (run / "s1.json").write_text(json.dumps(record))
    assert eval_json(capsys, str(run), "-r", str(refs))["metrics"]["Char. Recall"] == 1.0
    (run / "s1.json").write_text("{broken")
    data = eval_json(capsys, str(run), "-r", str(refs))
    assert data["metrics"]["Char. Recall"] == 0.0
    assert "s1.json is not a readable run record" in data["warnings"][0]


def test_a_run_folder_mixing_two_models_is_reported(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for story_id, model in (("a", "q4.gguf"), ("b", "q8.gguf"), ("c", "q4.gguf")):
        (run / f"{story_id}.txt").write_text(output([MAYA]))
        record = {"photos": [{"prepared_size": [100, 100]}], "model": model}
        (run / f"{story_id}.json").write_text(json.dumps(record))
    assert cli_main(["eval", str(run), "-r", str(split)]) == 0
    assert "holds outputs of 2 models: q4.gguf (2), q8.gguf (1)" in capsys.readouterr().err


def test_a_folder_of_reference_texts_with_frames_works_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = tmp_path / "refs"
    (refs / "s1").mkdir(parents=True)
    (refs / "s1.txt").write_text(output([(["0,0,40,40"], [])]))
    (refs / "s1" / "frame1.png").write_bytes(png((100, 100)))
    [reference] = ReferenceSet(refs).stories()
    assert reference.frame_sizes == ((100, 100),)
    run = tmp_path / "run"
    run.mkdir()
    (run / "s1.txt").write_text(output([(["0,0,40,40"], [])]))
    assert eval_json(capsys, str(run), "-r", str(refs))["metrics"]["Recall"] == 1.0


def test_a_missing_run_folder_or_no_matching_output_fails_with_a_message(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["eval", str(tmp_path / "nothing"), "--reference", str(split)]) == 1
    assert "does not exist: give the folder of model outputs" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "other.txt").write_text("hello")
    assert cli_main(["eval", str(tmp_path / "run"), "--reference", str(split)]) == 1
    assert "no output in" in capsys.readouterr().err


def test_without_the_eval_extra_eval_says_how_to_install_it(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def no_rouge(name: str, *args: object) -> object:
        return None if name == "rouge_score" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_rouge)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.txt").write_text(output([MAYA]))
    assert cli_main(["eval", str(tmp_path / "run"), "--reference", str(split)]) == 1
    assert "install the eval extra (pip install 'storyteller[eval]'" in capsys.readouterr().err


def test_limit_scores_only_the_first_stories(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.txt").write_text(output([MAYA]))
    (run / "w.txt").write_text(output([MAYA, MAYA]))  # a later story: not a stray output
    data = eval_json(capsys, str(run), "-r", str(split), "--limit", "2")
    assert (data["reference_stories"], data["missing"], data["unknown"]) == (2, ["b"], [])
    assert data["stories_scored"] == 1


def test_generate_gives_the_engine_a_text_folder_frames_in_name_order(tmp_path: Path) -> None:
    from desktop_app.engine.api import FinishReason, PhotoInfo, RunResult, SamplingParams
    from desktop_app.evaluation.run_folders import generate

    refs = tmp_path / "refs"
    (refs / "s1").mkdir(parents=True)
    (refs / "s1.txt").write_text(output([MAYA, MAYA]))
    for name in ("frame10.png", "frame2.png"):
        (refs / "s1" / name).write_bytes(png((56, 28)))
    seen: list[tuple[Path, ...]] = []

    def tell(photos: tuple[Path, ...]) -> RunResult:
        seen.append(photos)
        infos = tuple(PhotoInfo(p, (56, 28), (56, 28), 2) for p in photos)
        return RunResult("<think>\n</think>\n", FinishReason.STOP, infos, SamplingParams(), "", "m")

    progress = generate(ReferenceSet(refs), tmp_path / "run", tell)
    assert [p.name for p in seen[0]] == ["frame2.png", "frame10.png"]
    assert progress.written == ["s1"]
    record = json.loads((tmp_path / "run" / "s1.json").read_text())
    assert [p["prepared_size"] for p in record["photos"]] == [[56, 28], [56, 28]]
