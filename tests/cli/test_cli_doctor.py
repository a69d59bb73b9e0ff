"""``storyteller doctor``: what it reports, and that a bad model cannot take it down."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from desktop_app import paths
from desktop_app.cli import main as cli_main

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow


def test_doctor_tries_a_one_photo_story_with_a_given_model_with_timings(
    tiny_model: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_main(
        [
            "doctor",
            "--model",
            str(tiny_model.text_gguf),
            "--mmproj",
            str(tiny_model.mmproj_gguf),
            "--sha256",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "CPU" in report["compiled_backends"] and report["physical_cores"] >= 1
    assert report["versions"]["llama-cpp-python"] == "0.3.36"
    (model,) = report["models"]
    assert model["ok"] and model["quant"] == "F16" and model["backend"] == "llama.cpp (CPU)"
    timings = model["try_story"]["timings"]
    assert timings["generated_tokens"] > 0 and timings["first_token_s"] > 0
    assert len(timings["encode_s"]) == 1


def test_doctor_reports_a_damaged_model_and_fails(
    tiny_model: TinyModel, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = paths.user_models_dir() / "broken"
    folder.mkdir(parents=True)
    text = folder / "broken-Q4_K_M.gguf"
    text.write_bytes(tiny_model.text_gguf.read_bytes()[:5000])  # cut short, no manifest
    shutil.copy(tiny_model.mmproj_gguf, folder / "mmproj-broken-F16.gguf")
    code = cli_main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert "broken-Q4_K_M" in out and "FAILED" in out and "not a readable GGUF" in out


def test_doctor_without_models_says_how_to_get_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the test's own (empty) models folder: a source checkout's models/ may hold a model.
    monkeypatch.setattr(paths, "source_checkout_models_dir", lambda: None)
    code = cli_main(["doctor"])
    out = capsys.readouterr().out
    assert code == 0
    assert "llama.cpp backends: CPU" in out
    assert "models: none found: `storyteller-convert daniel3303/QwenStoryteller2`" in out
    assert "recommended model (QwenStoryteller2; daniel3303/QwenStoryteller also works)" in out
    assert "model [" not in out
    assert str(paths.settings_file()) in out and str(paths.user_models_dir()) in out


def test_doctor_refuses_mmproj_without_its_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", "--mmproj", "mmproj-x.gguf"]) == 1
    assert "--mmproj needs --model" in capsys.readouterr().err
