"""PyInstaller hook for llama-cpp-python.

llama_cpp loads its native libraries with ctypes from ``llama_cpp/lib`` (libllama, libggml*,
libmtmd), which PyInstaller's import analysis cannot see; without this hook the bundle fails at
import with "Shared library with base name 'llama' not found". The libraries must keep that
relative folder inside the bundle. PyInstaller's own dependency analysis then adds what they
link (libgomp, libstdc++; cudart/cublas for a CUDA build).
"""

from PyInstaller.utils.hooks import collect_data_files, collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp")
datas = collect_data_files("llama_cpp")
# The vision library's bindings are imported lazily by the engine.
hiddenimports = ["llama_cpp.mtmd_cpp", "llama_cpp.llama_chat_format"]
