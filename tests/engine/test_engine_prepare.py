"""Photos prepared before Generate: the engine encodes them and reads the whole prompt.

On the tiny model through real llama.cpp: after ``prepare`` a run encodes no photo and evaluates
only the prompt's last token again, from the same logits a cold run by a fresh backend draws from
(the one-thread preparation included); a preparation stopped between batches leaves what it read
for the run, which reads the rest; a preparation for another detail is of no use and is not used,
and a run that does not use the projector does not wait for that preparation's photo still in the
encoder.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from engine_helpers import Gate, backend_in, join_vision_threads
from PIL import Image

from desktop_app.engine import photo_encoder
from desktop_app.engine.api import (
    Detail,
    FinishReason,
    Phase,
    PhaseEvent,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
)
from desktop_app.engine.llama_backend import LlamaCppBackend

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

SAMPLING = SamplingParams(temperature=0.0, max_tokens=8)


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory, tiny_image: Path) -> list[Path]:
    folder = tmp_path_factory.mktemp("prepared")
    Image.linear_gradient("L").resize((112, 168)).convert("RGB").save(folder / "b.png")
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(folder / "c.png")
    return [tiny_image, folder / "b.png", folder / "c.png"]


@pytest.fixture
def backend(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = backend_in(tiny_model, tmp_path)
    yield engine
    engine.close()


def run(backend: LlamaCppBackend, request: StoryRequest) -> RunResult:
    (result,) = [
        e.result
        for e in backend.generate(request, should_stop=lambda: False)
        if isinstance(e, ResultEvent)
    ]
    return result


def test_a_prepared_album_reads_only_its_last_token_again(
    backend: LlamaCppBackend,
    tiny_model: TinyModel,
    album: list[Path],
    tmp_path: Path,
    first_logits: list[np.ndarray],
) -> None:
    request = StoryRequest(photos=tuple(album), detail=Detail.LOW, sampling=SAMPLING)
    list(backend.prepare(request, should_stop=lambda: False))
    assert backend.photos_encoded == 3
    prepared_read = backend.prompt_tokens_read
    assert backend.prompts.memory_used == 0  # no state kept: the live context is the run's
    result = run(backend, request)
    assert backend.photos_encoded == 3  # none again
    assert result.timings.prompt_reused
    assert backend.prompt_tokens_read - prepared_read == 1  # the last token, as Generate again
    assert prepared_read == result.timings.prompt_tokens == result.timings.prompt_cells_reused
    cold = backend_in(tiny_model, tmp_path / "cold")
    try:
        reference = run(cold, request)
    finally:
        cold.close()
    assert np.array_equal(first_logits[0], first_logits[1])  # bit-identical to a cold run
    assert result.raw_output == reference.raw_output


def test_a_preparation_stopped_between_batches_leaves_what_it_read_for_the_run(
    backend: LlamaCppBackend, album: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llama_cpp import mtmd_cpp

    request = StoryRequest(photos=tuple(album), detail=Detail.LOW, sampling=SAMPLING)
    decoded: list[int] = []
    real_decode = mtmd_cpp.mtmd_helper_decode_image_chunk

    def decode_image(*args: object) -> int:
        result = real_decode(*args)
        decoded.append(result)
        return result

    monkeypatch.setattr(mtmd_cpp, "mtmd_helper_decode_image_chunk", decode_image)
    # Generate is pressed once the first photo is in the KV cache.
    list(backend.prepare(request, should_stop=lambda: len(decoded) >= 1))
    assert decoded == [0]  # stopped in the batch after photo 1: nothing decoded after it
    read = backend.prompt_tokens_read
    result = run(backend, request)
    assert len(decoded) == 3  # the run decodes only photos 2 and 3
    reused = result.timings.prompt_cells_reused
    assert reused == read  # the text before the photos and photo 1
    assert backend.prompt_tokens_read - read == result.timings.prompt_tokens - reused


def test_a_preparation_for_another_detail_is_not_used(
    backend: LlamaCppBackend, album: list[Path]
) -> None:
    from desktop_app.engine.images import prepare_image

    request = StoryRequest(photos=(album[2],), detail=Detail.LOW, sampling=SAMPLING)
    list(backend.prepare(request, should_stop=lambda: False))
    prepared = backend.prompt_tokens_read  # the text before the photo, the photo, the rest
    more = StoryRequest(photos=(album[2],), detail=Detail.NORMAL, sampling=SAMPLING)
    encoded = backend.photos_encoded
    result = run(backend, more)
    assert backend.photos_encoded == encoded + 1  # prepared smaller: encoded again
    low = prepare_image(album[2], Detail.LOW.token_budget).tokens
    normal = prepare_image(album[2], Detail.NORMAL.token_budget).tokens
    text_cells = result.timings.prompt_tokens - normal
    assert prepared - low == text_cells  # the same text around the photo, prepared smaller
    # Only the text before the photo is shared with what was prepared: the rest is read again.
    assert 0 < result.timings.prompt_cells_reused < text_cells


def test_a_run_that_needs_no_projector_does_not_wait_for_an_old_details_photo(
    backend: LlamaCppBackend, album: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    told = StoryRequest(photos=tuple(album[1:]), detail=Detail.LOW, sampling=SAMPLING)
    run(backend, told)  # its whole prompt is now live
    gate = Gate(monkeypatch)
    stop = threading.Event()
    other = StoryRequest(photos=tuple(album[1:]), detail=Detail.NORMAL, sampling=SAMPLING)
    preparing = threading.Thread(
        target=lambda: list(backend.prepare(other, should_stop=stop.is_set))
    )
    preparing.start()
    try:
        assert gate.entered.wait(30)
        stop.set()  # the detail changed back: the preparation ends, its photo stays in the encoder
        preparing.join(10)
        assert not preparing.is_alive()
        events = list(backend.generate(told, should_stop=lambda: False))
        # Told again while the encoder is still busy: restored whole, it never waited.
        assert not gate.opened.is_set() and photo_encoder.still_encoding()
        (result,) = [e.result for e in events if isinstance(e, ResultEvent)]
        assert result.finish_reason is not FinishReason.CANCELLED and result.timings.prompt_reused
        phases = {e.phase for e in events if isinstance(e, PhaseEvent)}
        assert Phase.ENCODING_PHOTO not in phases
        assert not phases & {Phase.FINISHING_OLD_PHOTO, Phase.FINISHING_PHOTO}
    finally:
        gate.open()
        join_vision_threads()
