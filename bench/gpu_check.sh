#!/usr/bin/env bash
# The GPU check: the real-scale table on a Linux machine with an NVIDIA GPU, no network,
# Python 3.12 and the CUDA toolkit, run from a carried copy of this repository (at most 64 MiB).
#
#   bash bench/gpu_check.sh [--wheelhouse DIR] [--workdir DIR]    # on the GPU machine
#   bash bench/gpu_check.sh --dry-run [--workdir DIR]             # here, on the CPU (CI runs it)
#
# Steps, each timed (seconds on stderr and in the table's last lines):
#   gpu      nvidia-smi: the GPU's name, memory and compute capability (its CUDA architecture)
#   build    a CUDA wheel of the pinned llama-cpp-python for that architecture only
#            (CMAKE_CUDA_ARCHITECTURES=<cc>), from the sdist in the wheelhouse, unless the
#            wheelhouse already holds one (built on a CPU machine with nvcc and carried)
#   install  a fresh venv: that wheel and the app's wheels with `pip install --no-index`
#   shape    the 7B-shaped random checkpoint (bench/qwen25vl_checkpoint.py)
#   convert  straight to Q4_K_M (+ F16 mmproj), the path *Get the model* takes
#   table    bench/real_scale.py's encode and tell scenarios on the GPU (load, encode one photo
#            at each detail, prefill and decode tokens/s, a 5-photo story, and that story written greedily
#            with and without speculation), with the peak VRAM
#            nvidia-smi saw; cut (the table printed with what finished) at CUT_S of the budget
# --dry-run executes every step after `build` on the CPU with the tiny fixture model: `install`
# checks the current venv's llama-cpp-python instead of installing (the CPU machine has no
# wheelhouse), `shape` copies the committed tiny checkpoint, and the rest run as on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DRY=0
WORK=""
WHEELHOUSE="$REPO/wheelhouse"
BUDGET_S=${BUDGET_S:-600}   # the machine's 10 minutes
CUT_S=${CUT_S:-480}         # the table is cut at 8 of them, leaving time to print and hand back
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --workdir) WORK="$2"; shift ;;
    --wheelhouse) WHEELHOUSE="$2"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
WORK=${WORK:-$(mktemp -d -t storyteller-gpu-check.XXXXXX)}
mkdir -p "$WORK"
STARTED=$(date +%s)
TIMES="$WORK/step-times.txt"
: > "$TIMES"

step() {  # step NAME COMMAND...: run it, time it, keep the time for the table
  local name=$1; shift
  local t0; t0=$(date +%s%N)
  echo "[gpu_check $(date +%H:%M:%S)] $name ..." >&2
  "$@"
  local t1; t1=$(date +%s%N)
  awk -v n="$name" -v d="$((t1 - t0))" 'BEGIN { printf "%s %.1f\n", n, d / 1e9 }' >> "$TIMES"
  echo "[gpu_check] $name: $(tail -1 "$TIMES" | cut -d' ' -f2) s" >&2
}

gpu_info() {
  if [ "$DRY" = 1 ]; then
    echo "dry run: no GPU used" > "$WORK/gpu.txt"
  else
    nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader > "$WORK/gpu.txt"
  fi
  cat "$WORK/gpu.txt" >&2
}

build_wheel() {
  if ls "$WHEELHOUSE"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "using $(ls "$WHEELHOUSE"/llama_cpp_python-*.whl)" >&2
    return
  fi
  local cc; cc=$(cut -d, -f3 "$WORK/gpu.txt" | head -1 | tr -d ' .')
  local sdist; sdist=$(ls "$WHEELHOUSE"/llama_cpp_python-*.tar.gz | head -1)
  CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=$cc -DGGML_NATIVE=OFF" \
    python3 -m pip wheel --no-deps --no-index --no-build-isolation -w "$WHEELHOUSE" "$sdist"
}

install() {
  if [ "$DRY" = 1 ]; then
    PY="$REPO/.venv/bin/python"
  else
    python3 -m venv "$WORK/venv"
    PY="$WORK/venv/bin/python"
    "$PY" -m pip install -q --no-index --find-links "$WHEELHOUSE" llama-cpp-python
    "$PY" -m pip install -q --no-index --find-links "$WHEELHOUSE" --no-build-isolation "$REPO"
  fi
  "$PY" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, \
'GPU offload' if llama_cpp.llama_supports_gpu_offload() else 'CPU only')" >&2
}

shape() {
  if [ "$DRY" = 1 ]; then
    rm -rf "$WORK/checkpoint"
    cp -r "$REPO/tests/fixtures/tiny-qwen25vl/checkpoint" "$WORK/checkpoint"
  else
    "$PY" bench/qwen25vl_checkpoint.py "$WORK/checkpoint"
  fi
}

convert() {
  "$PY" bench/real_scale.py "$WORK" --only convert_q4km --redo convert_q4km > /dev/null
}

vram_sampler() {  # the most GPU memory in use, sampled every 200 ms, into $WORK/vram.txt
  [ "$DRY" = 1 ] && return
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
    > "$WORK/vram-samples.txt" 2>/dev/null &
  VRAM_PID=$!
}

table() {
  local left=$(( CUT_S - ($(date +%s) - STARTED) ))
  if [ "$left" -lt 10 ]; then left=10; fi
  vram_sampler
  # Cut, not failed: the steps that finished are in results.json and printed below.
  timeout "$left" "$PY" bench/real_scale.py "$WORK" --only encode tell --redo encode tell \
    > /dev/null || echo "table cut at ${CUT_S} s of the ${BUDGET_S} s budget" >&2
  if [ -n "${VRAM_PID:-}" ]; then kill "$VRAM_PID" 2>/dev/null || true; fi
}

step gpu gpu_info
if [ "$DRY" = 0 ]; then step build build_wheel; fi
step install install
step shape shape
step convert convert
step table table

"$PY" bench/real_scale.py "$WORK" --only --note "$(cat "$WORK/gpu.txt")"
if [ -s "$WORK/vram-samples.txt" ]; then
  echo "| peak VRAM (nvidia-smi) | $(sort -n "$WORK/vram-samples.txt" | tail -1) MiB |"
fi
echo
echo "| step | seconds |"
echo "|---|---|"
while read -r name seconds; do echo "| $name | $seconds |"; done < "$TIMES"
echo "total $(( $(date +%s) - STARTED )) s (budget ${BUDGET_S} s); work folder $WORK"
