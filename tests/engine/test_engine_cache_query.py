"""What the next run will find cached, asked before it starts (the time estimate depends on it).

On the tiny model through real llama.cpp: the answer is checked against what the next run then
really does (photos through the vision encoder, ``prompt_reused``), for a repeat, for a model
already loaded with a larger context, across a restart, and from the library's facts instead of
the files; every change that misses the prompt is checked in test_engine_prompt_reuse. The answer
never loads the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from engine_helpers import backend_in
from PIL import Image

from desktop_app.engine.api import (
    CachedParts,
    Detail,
    KnownPhoto,
    ResultEvent,
    RunResult,
    SamplingParams,
    StoryRequest,
)
from desktop_app.engine.llama_backend import LlamaCppBackend

if TYPE_CHECKING:
    from conftest import TinyModel

pytestmark = pytest.mark.slow

SAMPLING = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=8, seed=3)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, tiny_image: Path) -> list[Path]:
    """The fixture photo, a small one, and a 640x480 one that "more detail" prepares larger
    than "as trained" (the small ones are the same size at every detail)."""
    folder = tmp_path_factory.mktemp("album")
    Image.new("RGB", (84, 112), (30, 140, 200)).save(folder / "c.png")
    Image.linear_gradient("L").resize((640, 480)).convert("RGB").save(folder / "d.png")
    return [tiny_image, folder / "c.png", folder / "d.png"]


def known_photo(path: Path) -> KnownPhoto:
    """What the library records of a photo file: its sha256 and upright size."""
    with Image.open(path) as image:
        size = image.size  # (none of these photos is rotated by EXIF)
    return KnownPhoto(hashlib.sha256(path.read_bytes()).hexdigest(), size)


@pytest.fixture
def backend(tiny_model: TinyModel, tmp_path: Path) -> Iterator[LlamaCppBackend]:
    engine = backend_in(tiny_model, tmp_path)
    yield engine
    engine.close()


def run(backend: LlamaCppBackend, request: StoryRequest) -> tuple[RunResult, int]:
    """The run's result and how many photos it sent through the vision encoder."""
    before = backend.photos_encoded
    (result,) = [
        e.result
        for e in backend.generate(request, should_stop=lambda: False)
        if isinstance(e, ResultEvent)
    ]
    return result, backend.photos_encoded - before


def assert_foretold(backend: LlamaCppBackend, request: StoryRequest) -> CachedParts:
    """Ask, then run: the run encodes exactly the photos said to be missing, and reuses the
    prompt exactly when it was said to be cached. Returns what was said."""
    said = backend.cached(request)
    result, encoded = run(backend, request)
    assert result.timings.prompt_reused is said.prompt
    missing = 0 if said.prompt else said.photos.count(False)
    assert encoded == missing, (said, encoded)
    return said


def test_after_a_run_its_photos_and_prompt_are_cached_and_the_next_run_reuses_them(
    backend: LlamaCppBackend, photos: list[Path]
) -> None:
    request = StoryRequest(photos=tuple(photos[:2]), detail=Detail.LOW, sampling=SAMPLING)
    cold = assert_foretold(backend, request)
    assert cold == CachedParts((False, False), False)
    again = assert_foretold(backend, request)
    assert again == CachedParts((True, True), True)
    assert again.describe(2) == "photos and prompt cached"
    # Sampling (another seed here) applies after the prompt: still all cached.
    other_seed = dataclasses.replace(request, sampling=dataclasses.replace(SAMPLING, seed=4))
    assert assert_foretold(backend, other_seed) == CachedParts((True, True), True)


def test_a_model_loaded_with_a_larger_context_restores_a_prompt_saved_with_a_smaller_one(
    backend: LlamaCppBackend, photos: list[Path]
) -> None:
    request = StoryRequest(photos=(photos[0],), detail=Detail.LOW, sampling=SAMPLING)
    run(backend, request)  # saved in a context of 4096
    backend.preload(8192)  # a bigger album loaded the model with more context; it stays
    assert assert_foretold(backend, request) == CachedParts((True,), True)


def test_the_disk_caches_answer_after_a_restart_without_loading_the_model(
    tiny_model: TinyModel, photos: list[Path], tmp_path: Path
) -> None:
    request = StoryRequest(photos=tuple(photos), detail=Detail.LOW, sampling=SAMPLING)
    first = backend_in(tiny_model, tmp_path)
    try:
        run(first, request)
    finally:
        first.close()
    later = backend_in(tiny_model, tmp_path)
    try:
        assert later.cached(request) == CachedParts((True, True, True), True)
        assert later._loaded is None  # asking loaded nothing
        assert later.cache.hits == later.prompts.hits == 0  # nor read an entry
        assert assert_foretold(later, request).prompt
    finally:
        later.close()


def test_the_librarys_facts_give_the_answer_the_files_give(
    backend: LlamaCppBackend, photos: list[Path], tmp_path: Path
) -> None:
    a, c, _ = photos
    request = StoryRequest(photos=(a, c), detail=Detail.LOW, sampling=SAMPLING)
    run(backend, request)
    facts = tuple(known_photo(p) for p in (a, c))
    known = StoryRequest(photos=(a, c), detail=Detail.LOW, sampling=SAMPLING, known=facts)
    assert backend.cached(known) == backend.cached(request) == CachedParts((True, True), True)
    # Given the facts, no file is read (the GUI asks on every change of photos or choices).
    moved = StoryRequest(
        photos=(tmp_path / "gone-a.png", tmp_path / "gone-c.png"),
        detail=Detail.LOW,
        sampling=SAMPLING,
        known=facts,
    )
    assert backend.cached(moved) == CachedParts((True, True), True)
    # Without them, a photo that cannot be read means the run cannot start: nothing to find.
    unreadable = StoryRequest(photos=(a, tmp_path / "gone.png"), detail=Detail.LOW)
    assert backend.cached(unreadable) == CachedParts()
