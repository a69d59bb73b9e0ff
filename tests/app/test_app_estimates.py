"""The one estimate (plan_run) is made for the configured model, read from its GGUF headers
before it is loaded: its real file sizes for the memory, its context length for the red line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from desktop_app.app.estimates import plan_run, run_shape
from desktop_app.app.settings import Settings
from desktop_app.engine import costs
from desktop_app.engine.api import Detail


@pytest.fixture(scope="module")
def q8_model(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Any:
    """The tiny checkpoint converted to Q8_0 by the real converter (an 8192-token context)."""
    from convert import convert_checkpoint

    return convert_checkpoint(
        tiny_checkpoint,
        tmp_path_factory.mktemp("tiny-q8"),
        quant="Q8_0",
        mmproj_type="f16",
        name="tiny-qwen25vl",
    )


@pytest.mark.slow
def test_the_estimate_is_made_for_the_configured_q8_0_model(q8_model: Any) -> None:
    settings = Settings(model_path=q8_model.text_gguf, mmproj_path=q8_model.mmproj_gguf)
    shape = run_shape(settings)
    weights = q8_model.text_gguf.stat().st_size + q8_model.mmproj_gguf.stat().st_size
    assert shape.weights_bytes == weights  # the files' own sizes, not the 7B at Q4_K_M
    assert shape.context_length == 8192 and shape.n_layers == 2  # its header, not the 7B's
    sizes = [(640, 480)]
    plan = plan_run(sizes, Detail.AS_TRAINED, 1024, settings)
    default = plan_run(sizes, Detail.AS_TRAINED, 1024, None)
    assert plan.cost.n_ctx == default.cost.n_ctx  # same run, same tokens
    expected = costs.estimate_run(sizes, Detail.AS_TRAINED, 1024, shape=shape)
    assert plan.cost.memory_bytes == expected.memory_bytes
    assert plan.cost.memory_bytes < 2**30 < default.cost.memory_bytes  # tiny, not ~7 GiB
    assert plan.cost.problem == ""


@pytest.mark.slow
def test_a_run_over_the_models_context_length_is_red_before_generate(q8_model: Any) -> None:
    settings = Settings(model_path=q8_model.text_gguf, mmproj_path=q8_model.mmproj_gguf)
    sizes = [(1600, 1200)] * 4
    plan = plan_run(sizes, Detail.AS_TRAINED, 8192, settings)
    assert plan.cost.n_ctx > 8192
    assert "the model holds at most 8192" in plan.cost.problem
    # The 7B's 128k context would have let it through: the problem is the configured model's.
    assert plan_run(sizes, Detail.AS_TRAINED, 8192, None).cost.problem == ""


def test_without_a_model_the_estimate_falls_back_to_the_default_7b(tmp_path: Path) -> None:
    assert run_shape(None) is costs.QWEN25VL_7B
    assert run_shape(Settings(server_url="http://127.0.0.1:8080/v1")) is costs.QWEN25VL_7B
    missing = Settings(model_path=tmp_path / "nothing.gguf", mmproj_path=tmp_path / "m.gguf")
    assert run_shape(missing) is costs.QWEN25VL_7B


@pytest.mark.slow
def test_the_estimate_says_how_many_photos_an_earlier_run_already_read(
    tiny_model: Any, tmp_path: Path
) -> None:
    """Five photos told, a sixth appended: the plan (real backend, real llama.cpp) says what the
    run will not read again and expects less prompt reading; a server backend claims nothing."""
    from PIL import Image

    from desktop_app.app.estimates import plan_request
    from desktop_app.engine.api import ResultEvent, SamplingParams, StoryRequest
    from desktop_app.engine.llama_backend import LlamaCppBackend
    from desktop_app.engine.server_backend import OpenAIServerBackend

    photos = []
    for index in range(6):
        path = tmp_path / f"p{index}.png"
        Image.new("RGB", (84 + 28 * index, 112), (40 * index, 90, 200)).save(path)
        photos.append(path)
    settings = Settings(model_path=tiny_model.text_gguf, mmproj_path=tiny_model.mmproj_gguf)
    sampling = SamplingParams(temperature=0.0, max_tokens=4)
    five = StoryRequest(photos=tuple(photos[:5]), detail=Detail.LOW, sampling=sampling)
    six = StoryRequest(photos=tuple(photos), detail=Detail.LOW, sampling=sampling)
    backend = LlamaCppBackend(
        tiny_model.text_gguf,
        tiny_model.mmproj_gguf,
        cache_dir=tmp_path / "embeddings",
        prompt_cache_dir=tmp_path / "prompts",
        manifest=tiny_model.manifest,
    )
    try:
        cold = plan_request(six, settings, backend)
        for _ in backend.generate(five, should_stop=lambda: False):
            pass
        plan = plan_request(six, settings, backend)
        results = [
            e.result
            for e in backend.generate(six, should_stop=lambda: False)
            if isinstance(e, ResultEvent)
        ]
    finally:
        backend.close()
    assert "5 of 6 photos already read" in plan.time_line()
    assert plan.cached.photos_read == 5
    assert plan.clock is not None and cold.clock is not None
    assert plan.clock.plan.prefill_s < cold.clock.plan.prefill_s / 3
    assert plan.clock.plan.encode_s < cold.clock.plan.encode_s / 3
    assert results[0].timings.prompt_cells_reused > 0  # and the run did what it said
    server = OpenAIServerBackend("http://127.0.0.1:9/v1")
    assert "already read" not in plan_request(six, settings, server).time_line()
    assert plan_request(six, settings, server).cached.photos_read == 0
