"""`storyteller parse`: prints a saved output as JSON, text, Markdown or HTML."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.cli import main

# The story parser's golden files (tests/story/golden): the command prints what the parser reads.
GOLDEN_DIR = Path(__file__).resolve().parent.parent / "story" / "golden"
RAW_DIR = GOLDEN_DIR / "raw"
EXPECTED_DIR = GOLDEN_DIR / "expected"


def test_json_is_the_default_and_matches_the_contract(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert main(["parse", str(RAW_DIR / "unicode_names.txt"), "--frames", "2"]) == 0
    data = json.loads(capsysbinary.readouterr().out.decode("utf-8"))
    expected = json.loads((EXPECTED_DIR / "unicode_names.json").read_text(encoding="utf-8"))
    assert data == expected
    assert data["frames"][0]["characters"][1]["name"] == "美咲"


def test_frames_option_enables_missing_frame(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    main(["parse", str(RAW_DIR / "clean_5_frames.txt"), "--frames", "6"])
    issues = json.loads(capsysbinary.readouterr().out)["issues"]
    assert [(i["code"], i["frame"]) for i in issues] == [
        ("missing-frame", 6),
        ("missing-analysis", 6),
    ]


def test_text_format_prints_the_story_and_issues_on_stderr(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    assert main(["parse", str(RAW_DIR / "truncated_mid_story.txt"), "--format", "text"]) == 0
    captured = capsysbinary.readouterr()
    assert captured.out.decode().startswith("Nora pointed towards the sea")
    assert "error: truncated:" in captured.err.decode()


@pytest.mark.parametrize(("fmt", "start"), [("md", "# Story: "), ("html", "<!DOCTYPE html>")])
def test_markdown_and_html(
    fmt: str, start: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["parse", str(RAW_DIR / "clean_5_frames.txt"), "--format", fmt]) == 0
    assert capsysbinary.readouterr().out.decode("utf-8").startswith(start)


def test_reads_stdin(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    raw = "<gdi image1>Zoë <gdo char1>waves</gdo></gdi>".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    assert main(["parse", "-", "--format", "text"]) == 0
    assert capsysbinary.readouterr().out.decode("utf-8") == "Zoë waves\n"


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(tmp_path / "nope.txt")]) == 1
    err = capsys.readouterr().err
    assert "nope.txt does not exist" in err
    assert "Traceback" not in err
    assert main(["parse", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


def test_bad_frame_count_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "x.txt", "--frames", "zero"])
    assert exit_info.value.code == 2
    assert "not a whole number" in capsys.readouterr().err


def test_output_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    source = tmp_path / "out.txt"
    source.write_bytes((RAW_DIR / "unicode_names.txt").read_bytes() + b"\n\xff broken byte")
    result = subprocess.run(
        [sys.executable, "-m", "desktop_app", "parse", str(source), "--format", "text"],
        capture_output=True,
        env={"LC_ALL": "C", "PYTHONIOENCODING": "ascii", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert "美咲".encode() in result.stdout


def test_trained_format_writes_the_trained_bytes(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    raw = RAW_DIR / "trained_global_ids.txt"
    assert main(["parse", str(raw), "--format", "trained"]) == 0
    assert capsysbinary.readouterr().out == raw.read_bytes()


def test_a_story_json_goes_back_to_trained_text(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    raw = RAW_DIR / "trained_empty_tables.txt"
    assert main(["parse", str(raw)]) == 0
    story_json = tmp_path / "story.json"
    story_json.write_bytes(capsysbinary.readouterr().out)
    assert main(["parse", str(story_json), "--format", "trained"]) == 0
    assert capsysbinary.readouterr().out == raw.read_bytes()
    # A hand-edited JSON (a renamed character) comes back as text with the edit.
    data = json.loads(story_json.read_text(encoding="utf-8"))
    data["frames"][1]["characters"][0]["name"] = "Adélaïde"
    story_json.write_text(json.dumps(data), encoding="utf-8")
    assert main(["parse", str(story_json), "--format", "trained"]) == 0
    assert "| char7 | Adélaïde | Girl on a red bicycle |" in capsysbinary.readouterr().out.decode()


def test_a_malformed_story_json_is_refused_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "story.json"
    broken.write_text('{"frames": [{"characters": []}], "story": []}', encoding="utf-8")
    assert main(["parse", str(broken), "--format", "trained"]) == 1
    assert "story JSON is malformed" in capsys.readouterr().err
