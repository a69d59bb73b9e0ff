"""Loading a text GGUF and its vision projector into llama.cpp (the backend's ``Loaded`` pair)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from pathlib import Path

from desktop_app.engine import costs
from desktop_app.engine.gguf_info import ModelFileError
from desktop_app.engine.speculation import DecodeTimer

N_BATCH = costs.BATCH_TOKENS


@dataclass
class Loaded:
    """A model and its projector loaded for contexts of up to ``n_ctx`` cells."""

    llm: object  # llama_cpp.Llama
    mtmd_ctx: int
    n_ctx: int
    forced_tokenizer: object | None = None  # llguidance's view of the vocabulary, made on demand
    decode_timer: DecodeTimer = field(default_factory=DecodeTimer)  # speculation's cost model


def route_native_logs() -> None:
    """Send mtmd/clip logs through llama-cpp-python's logger (silent unless verbose)."""
    from llama_cpp import _logger, mtmd_cpp

    mtmd_cpp.mtmd_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def load(
    model_path: Path,
    mmproj_path: Path,
    n_ctx: int,
    *,
    n_gpu_layers: int,
    n_threads: int,
    use_mmap: bool,
    verbose: bool,
) -> Loaded:
    """The model and its projector loaded for ``n_ctx`` cells; ``ModelFileError`` if refused."""
    import llama_cpp
    from llama_cpp import mtmd_cpp

    route_native_logs()
    gpu = n_gpu_layers != 0
    try:
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_gpu_layers=n_gpu_layers,
            n_ctx=n_ctx,
            n_batch=N_BATCH,
            n_ubatch=N_BATCH,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            use_mmap=use_mmap,
            logits_all=False,
            flash_attn=gpu,
            verbose=verbose,
        )
    except (ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"llama.cpp cannot load {model_path.name} ({err}): check the file with "
            "`storyteller doctor` or convert the model again"
        ) from err
    params = mtmd_cpp.mtmd_context_params_default()
    params.use_gpu = gpu
    params.n_threads = n_threads
    params.print_timings = verbose
    params.warmup = False  # allocate for the real photo sizes, not a 1288x1288 worst case
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    from llama_cpp._utils import suppress_stdout_stderr

    # clip prints load-time advice straight to stderr, past the log callback.
    with suppress_stdout_stderr(disable=verbose):
        mtmd_ctx = mtmd_cpp.mtmd_init_from_file(str(mmproj_path).encode(), llm.model, params)
    if not mtmd_ctx:
        llm.close()
        raise ModelFileError(
            f"llama.cpp cannot load the vision projector {mmproj_path.name}: "
            "use the mmproj converted with this model"
        )
    if not mtmd_cpp.mtmd_support_vision(mtmd_ctx):
        mtmd_cpp.mtmd_free(mtmd_ctx)
        llm.close()
        raise ModelFileError(f"{mmproj_path.name} has no vision encoder")
    return Loaded(llm, mtmd_ctx, n_ctx)
