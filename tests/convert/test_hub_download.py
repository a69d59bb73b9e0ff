"""storyteller-convert OWNER/NAME: the real huggingface_hub client against a Hub on 127.0.0.1.

The loopback server (tests/hub_server.py) serves the tiny fixture as daniel3303/QwenStoryteller2.
No test reaches any other host: the autouse fixture in tests/conftest.py points HF_ENDPOINT at a
closed loopback port and HF_HOME into tmp_path; ``hub_server`` opts in to the loopback Hub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hub_server import HubServer

from convert import cli as convert_cli
from convert import hub
from convert.errors import (
    DownloadError,
    InsufficientDiskSpaceError,
    MissingFileError,
    NotQwen25VLError,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-qwen25vl"
CHECKPOINT = FIXTURE / "checkpoint"
REPO = "daniel3303/QwenStoryteller2"
SHARD = "model-00001-of-00002.safetensors"  # 3 MB: the "large" file the tests cut and corrupt


@pytest.fixture(autouse=True)
def quick_retries_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting; 64 KiB reads, so a 3 MB file arrives in many pieces."""
    import huggingface_hub.constants

    monkeypatch.setattr(hub, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)


@pytest.fixture
def storyteller2(hub_server: HubServer) -> HubServer:
    hub_server.add(REPO, CHECKPOINT)
    return hub_server


def cache_dir() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = convert_cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def fetch(spec: str = REPO, **kwargs: object) -> hub.Fetched:
    parsed = hub.parse_repo_spec(spec)
    assert parsed is not None
    kwargs.setdefault("output_dir", cache_dir().parent / "out")
    kwargs.setdefault("output_bytes", lambda weight_bytes: weight_bytes)
    return hub.fetch_checkpoint(parsed, **kwargs)  # type: ignore[arg-type]


def test_the_hub_client_itself_downloads_from_the_loopback_server(
    storyteller2: HubServer, tmp_path: Path
) -> None:
    """The server speaks the protocol huggingface_hub uses (info, tree, HEAD + GET resolve)."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(REPO, cache_dir=tmp_path / "cache", endpoint=storyteller2.url))
    for source in CHECKPOINT.iterdir():
        assert (folder / source.name).read_bytes() == source.read_bytes(), source.name
    assert folder.name == storyteller2.repos[REPO].commit


def test_download_by_name_then_convert(
    storyteller2: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit = storyteller2.repos[REPO].commit
    code, out, err = run_cli([REPO, "--outdir", str(tmp_path / "out"), "--quant", "F16"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"fetching {REPO} at revision {commit}"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["checkpoint"]["repo"] == REPO
    assert manifest["checkpoint"]["revision"] == commit
    assert (tmp_path / "out" / "QwenStoryteller2-F16.gguf").is_file()
    # only what the converter reads, config.json first, each file once
    fetched = storyteller2.downloaded()
    assert fetched[0] == "config.json"
    assert sorted(fetched) == sorted(
        n for n in os.listdir(CHECKPOINT) if n != "generation_config.json"
    )
    snapshot = cache_dir() / "models--daniel3303--QwenStoryteller2" / "snapshots" / commit
    assert (snapshot / SHARD).read_bytes() == (CHECKPOINT / SHARD).read_bytes()
    assert (snapshot.parent.parent / "refs" / "main").read_text() == commit


def test_existing_output_is_refused_before_downloading(
    storyteller2: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "QwenStoryteller2-Q4_K_M.gguf").write_bytes(b"GGUF")
    code, _, err = run_cli([REPO, "--outdir", str(out)], capsys)
    assert code == 1 and "--force" in err
    assert storyteller2.requests() == []


def test_one_byte_progress_for_the_whole_download(storyteller2: HubServer) -> None:
    events: list[tuple[int, int]] = []
    fetch(progress=lambda done, total: events.append((done, total)))
    weights = sum(
        (CHECKPOINT / n).stat().st_size
        for n in os.listdir(CHECKPOINT)
        if n.endswith(".safetensors")
    )
    assert {total for _, total in events} == {weights}
    assert events[-1] == (weights, weights)
    assert [done for done, _ in events] == sorted(done for done, _ in events)


def test_a_connection_cut_mid_file_resumes_and_the_result_is_identical(
    storyteller2: HubServer,
) -> None:
    storyteller2.repos[REPO].cut_after[SHARD] = 1_000_000
    fetched = fetch()
    assert (fetched.folder / SHARD).read_bytes() == (CHECKPOINT / SHARD).read_bytes()
    ranges = [r.range for r in storyteller2.requests("GET", SHARD)]
    assert ranges[0] is None and len(ranges) == 2
    assert 0 < int(ranges[1].removeprefix("bytes=").rstrip("-")) <= 1_000_000


def test_ctrl_c_keeps_the_partial_download_and_the_same_command_resumes(
    storyteller2: HubServer,
) -> None:
    def interrupt(done: int, total: int) -> None:
        if done > 500_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch(progress=interrupt)
    partials = list(cache_dir().rglob("*.incomplete"))
    assert len(partials) == 1 and partials[0].stat().st_size > 500_000
    kept = partials[0].stat().st_size
    fetched = fetch()
    assert (fetched.folder / SHARD).read_bytes() == (CHECKPOINT / SHARD).read_bytes()
    assert storyteller2.requests("GET", SHARD)[-1].range == f"bytes={kept}-"
    assert not list(cache_dir().rglob("*.incomplete"))


def test_the_plan_says_what_is_left_before_any_weight_byte(storyteller2: HubServer) -> None:
    """What a caller shows before starting (and for a paused download): sizes and disks."""
    spec = hub.parse_repo_spec(REPO)
    assert spec is not None
    weights = sum(
        (CHECKPOINT / n).stat().st_size
        for n in os.listdir(CHECKPOINT)
        if n.endswith(".safetensors")
    )
    plan = hub.plan_download(spec)
    assert (plan.weight_bytes, plan.missing_bytes, plan.partial_bytes) == (weights, weights, 0)
    assert not [n for n in storyteller2.downloaded() if n.endswith(".safetensors")]
    needs = plan.disk_needs(cache_dir().parent / "out", 1000)
    assert len(needs) == 1  # cache and output on one disk: one need, the sum
    assert needs[0].needed == weights + hub.CACHE_MARGIN_BYTES + 1050 and needs[0].enough

    def interrupt(done: int, total: int) -> None:
        if done > 500_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch(progress=interrupt)
    paused = hub.plan_download(spec)
    assert paused.partial_bytes > 500_000
    assert paused.missing_bytes == weights - paused.partial_bytes


def test_503_and_429_are_retried(storyteller2: HubServer) -> None:
    storyteller2.repos[REPO].fail_first[SHARD] = 2
    fetched = fetch()
    assert (fetched.folder / SHARD).read_bytes() == (CHECKPOINT / SHARD).read_bytes()


@pytest.mark.parametrize(
    ("damaged", "message"),
    [
        (SHARD, "does not match its sha256"),
        ("tokenizer_config.json", "does not match the Hub's listing"),
    ],
)
def test_a_file_whose_bytes_do_not_match_its_sha256_is_refused_and_nothing_converted(
    storyteller2: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damaged: str,
    message: str,
) -> None:
    storyteller2.repos[REPO].corrupt.add(damaged)
    code, _, err = run_cli([REPO, "--outdir", str(tmp_path / "out"), "--quant", "F16"], capsys)
    assert code == 1
    assert f"{damaged} from {REPO} {message}" in err
    assert "run the same command again" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    storage = cache_dir() / "models--daniel3303--QwenStoryteller2"
    assert not list(storage.rglob(damaged)) and not list(storage.rglob("*.incomplete"))
    storyteller2.repos[REPO].corrupt.clear()  # the next run fetches it again, and converts
    code, _, err = run_cli([REPO, "--outdir", str(tmp_path / "out"), "--quant", "F16"], capsys)
    assert code == 0, err


def test_another_architecture_downloads_nothing_but_config_json(
    hub_server: HubServer, tmp_path: Path
) -> None:
    llama = tmp_path / "llama"
    shutil.copytree(CHECKPOINT, llama)
    (llama / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    )
    hub_server.add("someone/llama", llama)
    with pytest.raises(NotQwen25VLError, match="LlamaForCausalLM"):
        fetch("someone/llama")
    assert hub_server.downloaded() == ["config.json"]


def test_a_bare_adapter_is_refused_before_any_weight(hub_server: HubServer) -> None:
    hub_server.add("someone/adapter", FIXTURE / "lora")
    with pytest.raises(NotQwen25VLError, match="--lora"):
        fetch("someone/adapter")
    assert hub_server.downloaded() == ["adapter_config.json"]


def test_a_repository_without_safetensors_is_refused_before_any_weight(
    hub_server: HubServer, tmp_path: Path
) -> None:
    pickles = tmp_path / "pickles"
    pickles.mkdir()
    shutil.copy(CHECKPOINT / "config.json", pickles)
    (pickles / "pytorch_model.bin").write_bytes(b"\0" * 20_000)
    hub_server.add("someone/pickles", pickles)
    with pytest.raises(MissingFileError, match=r"no \.safetensors.*pytorch_model\.bin"):
        fetch("someone/pickles")
    assert hub_server.downloaded() == ["config.json"]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, r"refused access .*401.*HF_TOKEN"),
        (403, r"refused access .*403.*accept its licence.*HF_TOKEN"),
        (404, r"was not found on http://127\.0\.0\.1:\d+ \(404\)"),
    ],
)
def test_refusals_are_said_plainly_without_a_traceback(
    storyteller2: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    status: int,
    message: str,
) -> None:
    storyteller2.repos[REPO].status = status
    code, out, err = run_cli([REPO, "--outdir", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.startswith("storyteller-convert: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err and out == ""


def test_an_unknown_revision_is_named(storyteller2: HubServer) -> None:
    with pytest.raises(DownloadError, match="has no revision 'nope'"):
        fetch(f"{REPO}@nope")


def test_no_server_at_all_is_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_ENDPOINT is the autouse fixture's closed loopback port; online mode."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    code, out, err = run_cli([REPO, "--outdir", str(tmp_path / "out")], capsys)
    assert code == 1
    assert "cannot reach http://127.0.0.1:" in err and "HF_HUB_OFFLINE=1" in err
    assert "Traceback" not in err and out == ""


def test_offline_with_the_snapshot_cached_converts_without_network(
    storyteller2: HubServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit = fetch().revision
    storyteller2.__exit__()  # no server any more
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, out, err = run_cli([REPO, "--outdir", str(tmp_path / "out"), "--quant", "F16"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"fetching {REPO} at revision {commit}"


def test_offline_without_the_snapshot_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli([REPO, "--outdir", str(tmp_path / "out")], capsys)
    assert code == 1
    assert "HF_HUB_OFFLINE is set" in err and "not in the Hugging Face cache" in err


def test_a_pre_populated_cache_is_not_downloaded_again(
    storyteller2: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import snapshot_download

    # another tool filled the shared cache
    snapshot_download(REPO, cache_dir=cache_dir(), endpoint=storyteller2.url)
    before = len(storyteller2.requests("GET", "/resolve/"))
    events: list[tuple[int, int]] = []
    fetched = fetch(progress=lambda done, total: events.append((done, total)))
    assert len(storyteller2.requests("GET", "/resolve/")) == before
    assert fetched.downloaded_bytes == 0 and events == []


def test_a_local_path_always_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert hub.parse_repo_spec(REPO) == hub.RepoSpec(REPO, None)
    assert hub.parse_repo_spec(f"{REPO}@v2") == hub.RepoSpec(REPO, "v2")
    (tmp_path / "daniel3303").mkdir()
    shutil.copytree(CHECKPOINT, tmp_path / REPO)
    assert hub.parse_repo_spec(REPO) is None
    assert hub.parse_repo_spec("./folder") is None and hub.parse_repo_spec("/abs/path") is None


def test_space_is_checked_per_filesystem_before_the_first_weight_byte(
    storyteller2: HubServer, tmp_path: Path
) -> None:
    with pytest.raises(InsufficientDiskSpaceError, match=r"free"):
        fetch(output_bytes=lambda weight_bytes: 10**15)
    assert not [n for n in storyteller2.downloaded() if n.endswith(".safetensors")]


# A real full disk: the Hugging Face cache on a 1 MiB tmpfs mounted in a private mount namespace,
# the converter run there as a child process against the loopback Hub.
TMPFS_RUN = r"""
set -e
mount -t tmpfs -o size=1m tmpfs "$HF_HOME"
exec "$PYTHON" -m convert.cli daniel3303/QwenStoryteller2 --outdir "$OUTDIR" --quant F16
"""


def test_too_little_disk_is_refused_before_downloading(
    storyteller2: HubServer, tmp_path: Path
) -> None:
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode
    ):
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs unshare -m to mount a small tmpfs")
        pytest.skip("unshare -m is not allowed here (needs root or user namespaces)")
    hf_home = tmp_path / "small-disk"
    hf_home.mkdir()
    env = dict(
        os.environ,
        HF_HOME=str(hf_home),
        PYTHON=sys.executable,
        OUTDIR=str(tmp_path / "out"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", TMPFS_RUN],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "free some space" in result.stderr and "GB on the disk of" in result.stderr
    assert "Traceback" not in result.stderr
    assert not [n for n in storyteller2.downloaded() if n.endswith(".safetensors")]
    assert "config.json" in storyteller2.downloaded()
    assert list(hf_home.iterdir()) == []  # the tmpfs went away with its namespace


def test_a_disk_that_fills_during_the_download_is_said_as_such_and_resumes(
    storyteller2: HubServer, small_disk: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's disk (a real small tmpfs) fills after the space check, as when another
    program writes meanwhile: the message says so, with what is still needed, and keeps what
    was fetched; with room made, the same download resumes and completes."""
    monkeypatch.setenv("HF_HOME", str(small_disk.path / "hf"))
    filled = False

    def fill_at_the_first_bytes(done: int, total: int) -> None:
        nonlocal filled
        if done and not filled:
            filled = True
            small_disk.fill()

    with pytest.raises(InsufficientDiskSpaceError) as raised:
        fetch(output_bytes=lambda weight_bytes: 0, progress=fill_at_the_first_bytes)
    message = str(raised.value)
    assert (
        f"the disk of {cache_dir()}" in message and "is full (the download needs about" in message
    )
    assert "run the same command again: it resumes" in message and "nothing was lost" in message

    small_disk.make_room()
    fetched = fetch(output_bytes=lambda weight_bytes: 0)
    assert (fetched.folder / SHARD).read_bytes() == (CHECKPOINT / SHARD).read_bytes()
