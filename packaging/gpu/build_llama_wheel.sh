#!/usr/bin/env bash
# Build a llama-cpp-python wheel for one ggml backend into wheelhouse/<backend>/, for bundling.
#
#   packaging/gpu/build_llama_wheel.sh cpu        # portable x86-64 (AVX2/FMA, Haswell+): the default bundle
#   packaging/gpu/build_llama_wheel.sh cpu-compat # also runs on CPUs without AVX (slow, but no SIGILL)
#   packaging/gpu/build_llama_wheel.sh cuda       # NVIDIA: needs the CUDA toolkit (nvcc) on the build machine
#   packaging/gpu/build_llama_wheel.sh vulkan     # AMD/Intel/NVIDIA: needs Vulkan headers + glslc
#   packaging/gpu/build_llama_wheel.sh metal      # macOS (Metal is forced on there anyway)
#
# Then install the wheel into the venv that builds the bundle and rebuild:
#   .venv/bin/pip install --force-reinstall --no-deps wheelhouse/cuda/llama_cpp_python-*.whl
#   .venv/bin/python packaging/build.py --self-test      # reports "backend CUDA"
#
# Each build compiles llama.cpp (about 12 minutes on two cores for CPU, much longer for CUDA):
# build once per platform and backend and keep the wheelhouse. --no-cache-dir matters: pip's wheel
# cache ignores CMAKE_ARGS and would silently hand back a wheel of another backend.
set -euo pipefail

BACKEND="${1:?usage: $0 cpu|cpu-compat|cuda|vulkan|metal}"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="wheelhouse/$BACKEND"

# GGML_NATIVE=OFF everywhere: a native build uses every instruction of the build machine's CPU
# and dies with SIGILL (illegal instruction) on users' older CPUs.
case "$BACKEND" in
  cpu)        ARGS="-DGGML_NATIVE=OFF" ;;
  cpu-compat) ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF" ;;
  # CUDA: list the GPU generations to support (sm_61 Pascal .. sm_89 Ada, sm_90 Hopper); each one
  # adds build time and size. A CUDA build will not even load on a machine without the NVIDIA
  # driver (libcuda.so.1), so ship it as a separate download next to the CPU bundle.
  cuda)       ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-61;70;75;80;86;89;90}" ;;
  # Vulkan: Debian/Ubuntu build deps: libvulkan-dev glslc spirv-headers (Windows: the LunarG SDK).
  vulkan)     ARGS="-DGGML_NATIVE=OFF -DGGML_VULKAN=ON" ;;
  metal)      ARGS="-DGGML_NATIVE=OFF -DGGML_METAL=ON" ;;
  *) echo "unknown backend $BACKEND (cpu, cpu-compat, cuda, vulkan, metal)" >&2; exit 2 ;;
esac

mkdir -p "$OUT"
echo "building llama-cpp-python $VERSION for $BACKEND: CMAKE_ARGS=$ARGS"
CMAKE_ARGS="$ARGS" "$PYTHON" -m pip wheel --no-deps --no-cache-dir -w "$OUT" "llama-cpp-python==$VERSION"
ls -l "$OUT"
