"""Many stories at once on a server: ``storyteller eval --generate --parallel N`` and
``storyteller album tell --all --parallel N``, against a scripted loopback server (concurrency,
retries, one failure, Ctrl-C) and against llama.cpp's ``llama-server -np 4`` with the tiny model
(concurrency seen in its ``/slots``, and each story the same as told alone or split at a
near-tie)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from loopback_server import LoopbackServer
from PIL import Image
from server_processes import API_KEY, free_port

from desktop_app.cli import main as cli_main

pytest.importorskip("nltk", reason="the eval extra is not installed")

pytestmark = pytest.mark.slow

STORY = "Frame 1: Maya sets the paper boat down on the puddle."


def reference_folder(folder: Path, count: int, frames: int = 1) -> Path:
    """``count`` reference stories ``s1``..., each with ``frames`` small frames beside it."""
    folder.mkdir()
    for number in range(1, count + 1):
        (folder / f"s{number}.txt").write_text(STORY)
        (folder / f"s{number}").mkdir()
        for frame in range(1, frames + 1):
            colour = (40 * number % 256, 30 * frame % 256, 120)
            Image.new("RGB", (56, 56), colour).save(folder / f"s{number}" / f"{frame}.png")
    return folder


def eval_generate(server: str, run: Path, reference: Path, *extra: str) -> int:
    return cli_main(
        [
            "eval",
            str(run),
            "--reference",
            str(reference),
            "--generate",
            "--server",
            server,
            "--max-tokens",
            "16",
            *extra,
        ]
    )


def test_eval_keeps_n_stories_in_flight_and_prints_the_throughput(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = reference_folder(tmp_path / "ref", 6)
    with LoopbackServer(owned_by="llamacpp", replies=[("Once", " upon")], delay_s=0.4) as stub:
        assert eval_generate(stub.url, tmp_path / "run", reference, "--parallel", "3") == 0
    err = capsys.readouterr().err
    assert 2 <= stub.most_active <= 3  # more than one at once, never more than asked
    assert sorted(p.name for p in (tmp_path / "run").glob("*.txt")) == [
        f"s{n}.txt" for n in range(1, 7)
    ]
    assert all((tmp_path / "run" / f"s{n}.txt").read_text() == "Once upon" for n in range(1, 7))
    assert "6 stories in" in err and "stories/h" in err and "3 streams summed" in err


def test_a_busy_server_is_asked_again_and_one_failure_fails_one_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = reference_folder(tmp_path / "ref", 3)
    # The first request meets a full server (429), then a loading one (503): asked again; one
    # story is refused outright (400) and fails alone.
    replies: list[Any] = [429, 503, ("Told",), 400, ("Told",)]
    with LoopbackServer(owned_by="llamacpp", replies=replies) as stub:
        code = eval_generate(stub.url, tmp_path / "run", reference, "--parallel", "2")
    err = capsys.readouterr().err
    assert code == 1 and len(stub.bodies) == 5
    assert err.count("failed: the server at") == 1 and "rejected the request (400)" in err
    told = sorted(p.name for p in (tmp_path / "run").glob("*.txt"))
    assert len(told) == 2 and all((tmp_path / "run" / n).read_text() == "Told" for n in told)


def test_ctrl_c_stops_every_story_in_flight_and_writes_none_of_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = reference_folder(tmp_path / "ref", 4)
    with LoopbackServer(owned_by="llamacpp", replies=[("Told",)], delay_s=30) as stub:
        # Ctrl-C once every slot is busy with a story that takes 30 s to start.
        def interrupt_when_busy() -> None:
            while stub.active < 2:
                threading.Event().wait(0.05)
            signal.raise_signal(signal.SIGINT)

        threading.Thread(target=interrupt_when_busy, daemon=True).start()
        code = eval_generate(stub.url, tmp_path / "run", reference, "--parallel", "2")
        stub.released.set()
    err = capsys.readouterr().err
    assert code == 130 and "stopped; 0 stories told this time" in err, err
    assert list((tmp_path / "run").iterdir()) == []  # nothing in flight was written
    assert len(stub.bodies) == 2


def test_the_embedded_engine_tells_one_at_a_time_and_says_so(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = reference_folder(tmp_path / "ref", 2)
    model = ["--model", str(tiny_model.text_gguf), "--mmproj", str(tiny_model.mmproj_gguf)]
    code = cli_main(
        [
            "eval",
            str(tmp_path / "run"),
            "--reference",
            str(reference),
            "--generate",
            *model,
            "--max-tokens",
            "4",
            "--parallel",
            "4",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "--parallel 4 needs a server" in err and "one story at a time" in err
    assert "2 stories in" in err and "(generated, one stream)" in err
    records = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("*.json")]
    assert len(records) == 2


def test_parallel_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = reference_folder(tmp_path / "ref", 1)
    assert eval_generate("http://127.0.0.1:9", tmp_path / "run", reference, "--parallel", "0") == 1
    assert "--parallel must be at least 1" in capsys.readouterr().err


def _library_with_albums(tmp_path: Path, count: int) -> Path:
    from desktop_app.library import Library

    folder = tmp_path / "library"
    library = Library.open(folder)
    for number in range(1, count + 1):
        photo = tmp_path / f"photo{number}.png"
        Image.new("RGB", (56, 56), (30 * number, 90, 160)).save(photo)
        library.create_album(f"album {number}")
        library.add_photos(f"album {number}", [photo])
    library.close()
    return folder


def test_album_tell_all_tells_every_album_n_at_a_time_through_one_writer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.library import Library, RunStatus

    folder = _library_with_albums(tmp_path, 4)
    writers: set[str] = set()
    for name in ("start_run", "append_output", "finish_run", "fail_run", "stop_run"):
        real = getattr(Library, name)

        def record(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            writers.add(threading.current_thread().name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Library, name, record)
    with LoopbackServer(owned_by="llamacpp", replies=[("Once", " upon")], delay_s=0.4) as stub:
        code = cli_main(
            [
                "album",
                "--library",
                str(folder),
                "tell",
                "--all",
                "--server",
                stub.url,
                "--parallel",
                "3",
                "--max-tokens",
                "16",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0 and 2 <= stub.most_active <= 3
    assert out.count("saved (complete") == 4
    assert writers == {threading.main_thread().name}  # every write from one thread
    library = Library.open(folder)
    try:
        for number in range(1, 5):
            (run,) = library.runs(f"album {number}")
            assert run.status is RunStatus.COMPLETE and run.raw_output == "Once upon"
    finally:
        library.close()


def test_album_tell_several_names_with_one_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _library_with_albums(tmp_path, 2)
    with LoopbackServer(owned_by="llamacpp", replies=[400]) as stub:
        code = cli_main(
            [
                "album",
                "--library",
                str(folder),
                "tell",
                "album 1",
                "album 2",
                "--server",
                stub.url,
                "--parallel",
                "2",
                "--max-tokens",
                "16",
            ]
        )
    captured = capsys.readouterr()
    assert code == 1 and captured.err.count("failed: the server at") == 2


def test_settings_test_connection_says_what_the_server_is(qtbot: Any) -> None:
    from desktop_app.app.settings import Settings
    from desktop_app.ui.settings_dialog import SettingsDialog

    with LoopbackServer(owned_by="vllm", model="storyteller-7b") as vllm:
        dialog = SettingsDialog(Settings(server_url=vllm.url))
        qtbot.addWidget(dialog)
        dialog.test_button.click()
        qtbot.waitUntil(lambda: dialog.test_label.text().startswith("Connected"), timeout=10000)
        assert dialog.test_label.text() == (
            "Connected: vLLM, model storyteller-7b; takes a grammar (strict format works)."
        )
    with LoopbackServer(owned_by="library", model="qwen") as other:
        dialog.server_edit.setText(other.url)
        dialog.test_button.click()
        qtbot.waitUntil(lambda: "qwen" in dialog.test_label.text(), timeout=10000)
        assert "takes no grammar" in dialog.test_label.text()
    dialog.server_edit.setText(f"http://127.0.0.1:{free_port()}")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: "cannot reach" in dialog.test_label.text(), timeout=15000)


# --- against llama.cpp's llama-server -np 4 ------------------------------------------------------

NEAR_TIE = 1e-3  # top-2 log-probability margin under which a split is rounding, not a bug


def _told_alone(url: str, photos: list[Path], max_tokens: int) -> tuple[str, list[dict[str, Any]]]:
    """The story the server tells for ``photos`` with nothing else running, and its tokens with
    their two likeliest alternatives (the same request the backend sends, unstreamed)."""
    import urllib.request

    from desktop_app.engine.api import Detail, SamplingParams, StoryRequest
    from desktop_app.engine.images import prepare_photos
    from desktop_app.engine.server_backend import build_request

    request = StoryRequest(
        photos=tuple(photos), sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens)
    )
    prepared: list[Any] = []
    for _ in prepare_photos(request.photos, Detail.AS_TRAINED.token_budget, prepared):
        pass
    body = build_request(request, prepared, "tiny")
    for streaming in ("stream", "stream_options"):
        body.pop(streaming)
    body.update(logprobs=True, top_logprobs=2)
    asked = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(asked, timeout=300) as response:
        answer = json.loads(response.read())
    choice = answer["choices"][0]
    return choice["message"]["content"], choice["logprobs"]["content"]


def _first_split(alone: str, tokens: list[dict[str, Any]], other: str) -> dict[str, Any] | None:
    """The token of the lone run where ``other`` first differs from it (None when equal)."""
    if alone == other:
        return None
    common = next(
        (i for i, (a, b) in enumerate(zip(alone, other, strict=False)) if a != b),
        min(len(alone), len(other)),
    )
    written = 0
    for token in tokens:
        written += len(token["token"])
        if written > common:
            return token
    return tokens[-1] if tokens else None


def test_parallel_4_on_llama_server_runs_side_by_side_and_tells_each_story_as_alone(
    request: pytest.FixtureRequest,
    tiny_model: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    from server_processes import running_server

    binary = request.getfixturevalue("llama_server_binary")
    reference = reference_folder(tmp_path / "ref", 4, frames=2)
    max_tokens = 160
    with running_server(
        "llama-server", tiny_model, tmp_path, binary=binary, parallel=4, ctx=4 * 4096
    ) as server:
        busy: list[int] = []
        done = threading.Event()

        def watch_slots() -> None:
            while not done.is_set():
                busy.append(server.busy_slots())
                done.wait(0.02)

        watcher = threading.Thread(target=watch_slots, daemon=True)
        watcher.start()
        try:
            code = eval_generate(
                server.url,
                tmp_path / "run",
                reference,
                "--parallel",
                "4",
                "--temperature",
                "0",
                "--max-tokens",
                str(max_tokens),
                "--api-key",
                API_KEY,
            )
        finally:
            done.set()
            watcher.join()
        assert code == 0, capsys.readouterr().err
        assert max(busy) >= 2, f"never two slots busy at once: {busy}"
        verdicts = []
        for number in range(1, 5):
            frames = sorted((reference / f"s{number}").iterdir())
            alone, tokens = _told_alone(server.url, frames, max_tokens)
            together = (tmp_path / "run" / f"s{number}.txt").read_text()
            assert len(tokens) > 20 and together  # a story, not an empty match
            split = _first_split(alone, tokens, together)
            if split is None:
                verdicts.append(f"s{number}: same as alone")
                continue
            top = sorted((t["logprob"] for t in split["top_logprobs"]), reverse=True)
            margin = top[0] - top[1]
            assert margin < NEAR_TIE, (
                f"s{number} differs from the same request told alone at {split['token']!r}, "
                f"where the top-2 margin is {margin:.4g} (not a near-tie)"
            )
            verdicts.append(f"s{number}: splits at a near-tie (margin {margin:.2g})")
    report = f"most slots busy at once: {max(busy)}; " + "; ".join(verdicts)
    record_property("parallel_verdict", report)
    print(report)
