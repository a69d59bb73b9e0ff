#!/usr/bin/env bash
# CI step for issue 7: build the Linux bundle from this venv (its llama-cpp-python is the portable
# CPU build .ci/run installs) and prove the frozen app works on a machine without a display:
#   1. packaging/build.py --archive: dist/Storyteller/, the tar.gz and the .deb, with size and time;
#   2. every bundled library's dependencies resolve (ldd);
#   3. the bundle's own converter (`Storyteller -m convert.cli`) converts the committed tiny
#      checkpoint, through llama.cpp's K-quant quantizer, and downloads it by name from the
#      tests' Hub on 127.0.0.1 (huggingface_hub in the bundle) and converts that;
#   4. `Storyteller --self-test --model --mmproj` with no DISPLAY and no QT_QPA_PLATFORM: Qt
#      offscreen, llama.cpp + vision library, photos, a one-photo story;
#   5. `Storyteller tell --strict-format` (the CLI and llama.cpp's grammar sampler), as JSON;
#   6. `Storyteller doctor --try-story` (its model probe runs in a child `Storyteller -m ...`);
#   7. under Xvfb: the self-test on the real xcb platform, and the GUI's window, screenshotted to
#      dist/screenshots/ (for review) and checked to be drawn and still running after 8 s.
# Takes about a minute on two cores (the PyInstaller build is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
APP=dist/Storyteller/Storyteller
WORK=$(mktemp -d -t storyteller-ci-bundle-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A private home: the bundle must not see (or write) the CI user's library and settings.
export STORYTELLER_HOME="$WORK/home"
step() { printf '\n== %s\n' "$*"; }

step "build the bundle"
started=$(date +%s)
"$PY" packaging/build.py --archive
echo "build step: $(( $(date +%s) - started )) s"

step "the bundle carries the third-party licence texts (packaging/licences.py)"
NOTICES=dist/Storyteller/THIRD-PARTY-NOTICES
for name in pyside6-essentials shiboken6 pi-heif llama-cpp-python numpy pillow; do
  grep -q -- "-> $name-[0-9]" "$NOTICES/README.txt" \
    || { echo "$name missing from $NOTICES/README.txt" >&2; exit 1; }
done
ls "$NOTICES"/pyside6-essentials-*/LGPL-3.0.txt "$NOTICES"/llama-cpp-python-*/llama.cpp-MIT.txt \
  "$NOTICES"/pi-heif-*/LGPL-3.0.txt "$NOTICES"/python/LICENSE.txt >/dev/null
if ls dist/Storyteller/_internal | grep -q "^pillow_heif"; then
  echo "pillow-heif (GPLv2 wheels, x265 encoder) is in the bundle" >&2; exit 1
fi
echo "ok: $(ls "$NOTICES" | wc -l) entries, $(du -sk "$NOTICES" | cut -f1) KB"

step "every bundled library finds the libraries it links"
# Wayland's client libraries are the user's (any Wayland desktop has them; without them Qt uses
# xcb), like libGL/libEGL, which PyInstaller never bundles.
missing=$(cd dist/Storyteller/_internal && find . -name "*.so*" -type f | while read -r lib; do
  LD_LIBRARY_PATH=$PWD ldd "$lib" 2>/dev/null | grep "not found" | sed "s|^|$lib: |" || true
done | grep -v -E "libwayland-(client|cursor|egl)" | sort -u || true)
if [ -n "$missing" ]; then echo "$missing"; exit 1; fi
echo "ok"

step "convert the tiny fixture checkpoint with the bundled converter"
"$APP" -m convert.cli tests/fixtures/tiny-qwen25vl/checkpoint --outdir "$WORK/model" \
  --quant Q4_K_M --name tiny
MODEL="$WORK/model/tiny-Q4_K_M.gguf"
MMPROJ="$WORK/model/mmproj-tiny-F16.gguf"
test -f "$MODEL" && test -f "$MMPROJ"

step "download by name from a Hub on 127.0.0.1 with the bundled converter, then convert"
# What the first-run guide's Download and convert needs (huggingface_hub and its HTTP stack) is
# in the bundle: the loopback Hub of the tests serves the tiny fixture; nothing else is reached.
"$PY" - "$WORK/hub_url" <<'PYEOF' &
import sys, time
from pathlib import Path
sys.path.insert(0, "tests")
from hub_server import HubServer
with HubServer() as hub:
    hub.add("daniel3303/QwenStoryteller2", Path("tests/fixtures/tiny-qwen25vl/checkpoint"))
    Path(sys.argv[1]).write_text(hub.url)
    time.sleep(600)
PYEOF
hub_pid=$!
trap 'kill "$hub_pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [ -s "$WORK/hub_url" ] && break; sleep 0.1; done
HF_ENDPOINT=$(cat "$WORK/hub_url") HF_HOME="$WORK/hf" HF_HUB_OFFLINE=0 HF_HUB_DISABLE_XET=1 \
  HF_HUB_DISABLE_TELEMETRY=1 "$APP" -m convert.cli daniel3303/QwenStoryteller2 \
  --outdir "$WORK/downloaded" --quant Q4_K_M | tee "$WORK/download.txt"
kill "$hub_pid"
grep -q "^fetching daniel3303/QwenStoryteller2 at revision [0-9a-f]\{40\}$" "$WORK/download.txt"
test -f "$WORK/downloaded/QwenStoryteller2-Q4_K_M.gguf"
test -d "$WORK/hf/hub/models--daniel3303--QwenStoryteller2/snapshots"

step "self-test, headless (no DISPLAY, no QT_QPA_PLATFORM)"
# Through build.py, the entry point the release workflow's macOS and Windows jobs call too
# (tests/packaging/test_release_workflow.py checks that they do).
env -u DISPLAY -u WAYLAND_DISPLAY -u QT_QPA_PLATFORM "$PY" packaging/build.py --skip-build \
  --self-test --model "$MODEL" --mmproj "$MMPROJ" --screenshot "$WORK/selftest.png" \
  | tee "$WORK/selftest.txt"
grep -q "platform offscreen" "$WORK/selftest.txt"
grep -q "\[     ok\] story" "$WORK/selftest.txt"
# pi-heif is a dependency, so the bundle must read iPhone photos.
grep -q "HEIC: read (pi-heif)" "$WORK/selftest.txt"
# The bundled llama.cpp must be the portable build: a GGML_NATIVE build on a machine with AVX-512
# would list it here, and crash with SIGILL on most laptops.
if grep -q "AVX512" "$WORK/selftest.txt"; then
  echo "the bundled llama.cpp was compiled for AVX-512: rebuild it with CMAKE_ARGS=-DGGML_NATIVE=OFF" >&2
  exit 1
fi
test -s "$WORK/selftest.png"

step "storyteller tell through the bundle (strict format: llama.cpp's grammar sampler), as JSON"
"$APP" tell tests/fixtures/tiny-qwen25vl/image.png --model "$MODEL" --mmproj "$MMPROJ" \
  --strict-format --max-tokens 1200 --seed 1 --format json -q > "$WORK/story.json"
# Strict format makes even the random tiny model write a complete story that validates.
"$PY" -c "
import json, sys
story = json.load(open(sys.argv[1]))
assert story['complete'] and len(story['frames']) == 1, story
assert not [issue for issue in story['issues'] if issue['severity'] == 'error'], story['issues']
print('complete one-frame story, no errors')
" "$WORK/story.json"

step "doctor with a one-photo story (child process through Storyteller -m)"
env -u DISPLAY "$APP" doctor --model "$MODEL" --mmproj "$MMPROJ" --try-story | tee "$WORK/doctor.txt"
grep -q "llama-cpp-python 0.3" "$WORK/doctor.txt"

if command -v xvfb-run >/dev/null 2>&1; then
  step "under Xvfb: self-test on xcb, and the GUI's window"
  mkdir -p dist/screenshots
  cat > "$WORK/xvfb.sh" <<EOF
#!/bin/sh
set -e
"$APP" --self-test --screenshot dist/screenshots/selftest-xcb.png > "$WORK/xcb.txt"
"$APP" > "$WORK/gui.log" 2>&1 &
gui=\$!
sleep 8
kill -0 \$gui   # still running: the window opened and the app did not crash
# Xvfb keeps its screen as an XWD file in -fbdir: copy it while the window is up.
cp "$WORK/fb/Xvfb_screen0" "$WORK/screen.xwd"
kill \$gui
wait \$gui 2>/dev/null || true
EOF
  chmod +x "$WORK/xvfb.sh"
  mkdir -p "$WORK/fb"
  env -u QT_QPA_PLATFORM -u DISPLAY xvfb-run -a -s "-screen 0 1280x800x24 -fbdir $WORK/fb" "$WORK/xvfb.sh" \
    || { cat "$WORK/gui.log" "$WORK/xcb.txt" 2>/dev/null; exit 1; }
  grep -q "platform xcb" "$WORK/xcb.txt"
  "$PY" packaging/xwd_to_png.py "$WORK/screen.xwd" dist/screenshots/gui-xvfb.png
  # A drawn window has many colours; an empty X screen has one.
  "$PY" -c "
import sys
from PIL import Image
colours = Image.open(sys.argv[1]).getcolors(maxcolors=1 << 20)
assert colours is None or len(colours) > 8, 'the GUI drew nothing on the Xvfb screen'
print('GUI screenshot: dist/screenshots/gui-xvfb.png')
" dist/screenshots/gui-xvfb.png
else
  step "xvfb-run missing: skipped the real-window check"
fi

step "bundle OK"
