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
