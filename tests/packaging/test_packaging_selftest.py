"""``storyteller --self-test``: what a user, the first-run guide or CI sees when checking an install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from desktop_app.cli import main
from desktop_app.cli.selftest_cmd import wants_self_test
from desktop_app.selftest import (
    CheckResult,
    CheckStatus,
    LlamaBuildInfo,
    SelfTestReport,
    llama_build_info,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _headless_env() -> dict[str, str]:
    """The environment of a machine without any display and without a Qt platform chosen."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _run_self_test(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # A subprocess: Qt must start without a display on its own, and llama.cpp may abort a process.
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", "--self-test", *args],
        capture_output=True,
        text=True,
        env={**_headless_env(), **(env or {})},
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def test_self_test_passes_headless_and_draws_text(tmp_path: Path) -> None:
    screenshot = tmp_path / "selftest.png"
    result = _run_self_test("--screenshot", str(screenshot))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "platform offscreen" in result.stdout  # chose offscreen itself instead of aborting
    assert f"backend {llama_build_info().accelerator}" in result.stdout
    assert "vision library (mtmd): loaded" in result.stdout
    assert "HEIC: read (pi-heif)" in result.stdout  # the shipped sample photo decodes
    assert "all checks passed" in result.stdout
    with Image.open(screenshot) as image:
        dark_pixels = sum(1 for pixel in image.convert("L").get_flattened_data() if pixel < 100)
    assert dark_pixels > 50, "the test widget's text was not drawn (fonts missing?)"


def test_self_test_fails_on_a_system_without_fonts(tmp_path: Path) -> None:
    """A minimal Linux install has no fonts: Qt would draw every text as empty boxes."""
    no_fonts = tmp_path / "fonts.conf"
    no_fonts.write_text('<?xml version="1.0"?>\n<fontconfig></fontconfig>\n')
    result = _run_self_test(env={"FONTCONFIG_FILE": str(no_fonts)})
    assert result.returncode == 1
    qt_line = next(line for line in result.stdout.splitlines() if "] Qt" in line)
    assert "FAILED" in qt_line and "no fonts found" in qt_line and "fonts-dejavu-core" in qt_line


@pytest.mark.slow
def test_self_test_tells_a_one_photo_story_with_the_tiny_model(tiny_model: Any) -> None:
    result = _run_self_test(
        "--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    story_line = next(line for line in result.stdout.splitlines() if "] story" in line)
    assert "[     ok]" in story_line
    assert tiny_model.text_gguf.name in story_line
    assert "encoding photo 1/1" in result.stdout


def test_self_test_fails_with_exit_1_and_names_a_missing_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-model.gguf"
    code = main(["--self-test", "--model", str(missing), "--mmproj", str(tmp_path / "mmproj.gguf")])
    out = capsys.readouterr().out
    assert code == 1
    assert "no-such-model.gguf does not exist" in out
    assert "SOME CHECKS FAILED" in out


@pytest.mark.slow
def test_self_test_reports_a_corrupt_model_instead_of_crashing(
    tmp_path: Path, tiny_model: Any
) -> None:
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 8)
    result = _run_self_test("--model", str(corrupt), "--mmproj", str(tiny_model.mmproj_gguf))
    assert result.returncode == 1, result.stdout + result.stderr
    story_line = next(line for line in result.stdout.splitlines() if "] story" in line)
    assert "FAILED" in story_line and "corrupt.gguf" in story_line


def test_self_test_wants_both_model_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--self-test", "--model", str(tmp_path / "x.gguf")]) == 1
    assert "give both --model" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--self-test"], True),
        (["-v", "--self-test", "--model", "m.gguf", "--mmproj", "p.gguf"], True),
        (["doctor", "--model", "m.gguf", "--mmproj", "p.gguf", "--self-test"], False),
        (["tell", "photo.jpg"], False),
    ],
)
def test_only_a_top_level_self_test_flag_starts_the_self_test(
    argv: list[str], wanted: bool
) -> None:
    assert wants_self_test(argv) is wanted


def test_help_lists_the_self_test(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--self-test" in capsys.readouterr().out


def test_llama_build_info_reports_the_compiled_backends() -> None:
    info = llama_build_info()
    assert "CPU" in info.backends
    assert info.version.startswith("0.3.")
    assert info.system_info.startswith(info.backends[-1]) or "CPU :" in info.system_info


@pytest.mark.parametrize(
    ("backends", "accelerator"),
    [
        (("CPU",), "CPU"),
        (("CUDA", "CPU"), "CUDA"),
        (("BLAS", "CPU"), "CPU"),
        (("Vulkan", "CPU"), "Vulkan"),
        (("Metal", "BLAS", "CPU"), "Metal"),
    ],
)
def test_accelerator_is_the_gpu_backend_when_one_is_compiled_in(
    backends: tuple[str, ...], accelerator: str
) -> None:
    info = LlamaBuildInfo(version="0.3.36", backends=backends, gpu_offload=False, system_info="")
    assert info.accelerator == accelerator


def test_report_fails_only_on_failed_checks() -> None:
    passed = CheckResult("Qt", CheckStatus.PASSED, "fine")
    skipped = CheckResult("story", CheckStatus.SKIPPED, "no model")
    failed = CheckResult("llama.cpp", CheckStatus.FAILED, "libllama.so missing")
    assert SelfTestReport((passed, skipped)).ok
    report = SelfTestReport((passed, failed, skipped))
    assert not report.ok
    assert "libllama.so missing" in report.format()
    assert report.format().splitlines()[-1].startswith("self-test: SOME CHECKS FAILED")
