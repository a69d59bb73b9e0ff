"""The release workflow builds and checks each platform's bundle the way CI does on Linux.

.github/workflows/release.yml never runs here (no macOS or Windows machine); what can be checked
is that its jobs call the same entry points as .ci/run and packaging/ci_bundle.sh, so that a
change to how CI builds or self-tests the bundle cannot leave the release jobs behind, and that
actionlint accepts it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"
CI_RUN = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")


def joined(script: str) -> str:
    """Shell text with continuation lines joined into one."""
    return re.sub(r"\s*\\\n\s*", " ", script)


CI_BUNDLE = joined((REPO_ROOT / "packaging" / "ci_bundle.sh").read_text(encoding="utf-8"))


def jobs() -> dict[str, dict]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]


def run_text(job: dict) -> str:
    """Every shell line of a job, with continuation lines joined."""
    return joined("\n".join(step.get("run", "") for step in job["steps"]))


def packaging_install_extras() -> str:
    """The extras .ci/run installs before it builds the bundle: ``.[heic,packaging]``."""
    found = re.findall(r"pip install -q -e '(\.\[[^']*packaging[^']*\])'", CI_RUN)
    assert len(found) == 1, "the packaging install line in .ci/run changed: update this test"
    return found[0]


def test_three_jobs_for_the_platforms_users_have() -> None:
    found = jobs()
    assert set(found) == {"linux-x64", "macos-arm64", "windows-x64"}
    assert found["macos-arm64"]["runs-on"] in ("macos-14", "macos-15")  # Apple silicon runners
    assert found["windows-x64"]["runs-on"].startswith("windows-")
    assert "-DGGML_METAL=on" in found["macos-arm64"]["env"]["CMAKE_ARGS"]
    assert "-DGGML_NATIVE=OFF" in found["windows-x64"]["env"]["CMAKE_ARGS"]


def test_the_linux_job_is_ci_itself() -> None:
    assert "bash .ci/run" in run_text(jobs()["linux-x64"])
    assert "bash packaging/ci_bundle.sh" in CI_RUN  # which builds and self-tests the bundle


@pytest.mark.parametrize("name", ["macos-arm64", "windows-x64"])
def test_other_jobs_call_ci_s_install_build_convert_and_self_test(name: str) -> None:
    text = run_text(jobs()[name])
    # Install: the same extras as .ci/run's packaging step.
    assert f"-m pip install -q -e '{packaging_install_extras()}'" in text
    # Build: ci_bundle.sh's build.py --archive (Windows signs between building and archiving).
    assert '"$PY" packaging/build.py --archive' in CI_BUNDLE
    assert re.search(r'"\$PY" packaging/build.py (--skip-build )?--archive', text)
    # The tiny model, converted by the bundle's own converter, as ci_bundle.sh does.
    convert = "-m convert.cli tests/fixtures/tiny-qwen25vl/checkpoint"
    assert f'"$APP" {convert}' in CI_BUNDLE and f'"$APP" {convert}' in text
    # The self-test through build.py with that model, as ci_bundle.sh runs it.
    self_test = r'"\$PY" packaging/build.py --skip-build --self-test --model "[^"]+" --mmproj'
    assert re.search(self_test, CI_BUNDLE)
    assert re.search(self_test, text)
    assert "Q4_K_M --name tiny" in CI_BUNDLE and "Q4_K_M --name tiny" in text


@pytest.mark.parametrize("name", ["macos-arm64", "windows-x64"])
def test_the_self_test_runs_headless_and_the_artefact_is_uploaded(name: str) -> None:
    steps = jobs()[name]["steps"]
    self_test = [s for s in steps if "--self-test" in s.get("run", "")]
    assert len(self_test) == 1 and self_test[0]["env"]["QT_QPA_PLATFORM"] == "offscreen"
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 1 and steps[-1] is uploads[0]
    wanted = ".dmg" if name.startswith("macos") else ".zip"
    assert wanted in uploads[0]["with"]["path"]


def test_signing_runs_only_when_its_secrets_exist() -> None:
    for name, job in jobs().items():
        for step in job["steps"]:
            text = step.get("run", "")
            signs = any(word in text for word in ("security import", "notarytool", "signtool"))
            if signs:
                condition = step.get("if", "")
                assert re.fullmatch(r"env\.\w+ != ''( && env\.\w+ != '')*", condition), (
                    f"{name}: '{step.get('name')}' must run only when its secret is set"
                )
                for secret in re.findall(r"env\.(\w+)", condition):
                    assert job["env"][secret] == f"${{{{ secrets.{secret} }}}}"


def actionlint() -> str | None:
    local = Path(sys.executable).parent / ("actionlint.exe" if os.name == "nt" else "actionlint")
    return str(local) if local.is_file() else shutil.which("actionlint")


def test_actionlint_accepts_the_workflow() -> None:
    binary = actionlint()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is missing: .ci/run installs it with the test extra")
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [binary, str(WORKFLOW)], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
