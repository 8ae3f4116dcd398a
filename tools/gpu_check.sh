#!/usr/bin/env bash
# The GPU acceptance run (see tools/gpu_check.py for the steps and the report):
#
#   bash tools/gpu_check.sh --fetch-wheels     # once, on a machine with PyPI: the stack into .whl/ (~9 MB)
#   bash tools/gpu_check.sh [--budget 540]     # on the GPU machine, which has torch but no OpenMMLab package
#   bash tools/gpu_check.sh --only perf --budget 360       # the training-speed table (docs/training_speed.md)
#   bash tools/gpu_check.sh --only perf-det --budget 370   # Mask R-CNN, eager and compiled: its own call,
#                                              # with .whl/prebuilt/ carried; perf/perf-det never build mmcv
#   bash tools/gpu_check.sh --small --only perf,perf-det --budget 1800   # their CPU smoke run: before every GPU call
#   bash tools/gpu_check.sh --small            # the flow on CPU at tiny sizes, in the project's venv
#   GPU_CHECK_SAVE_BUILD=1 bash tools/gpu_check.sh   # also leaves the mmcv CUDA build in $OUT, in parts:
#       cat them into .whl/prebuilt/mmcv-full.tar.xz and the next run on that GPU kind skips the build
#
# On the GPU machine it installs, from .whl/ and nothing else: mmengine, mmdet, mmpretrain and the pure-Python
# packages the image lacks into $GPU_CHECK_SITE (PYTHONPATH), and mmcv (requirements/runtime.txt) from its sdist twice:
#   - without ops (pure Python, seconds) for stage A;
#   - with CUDA ops for this GPU's architecture only (TORCH_CUDA_ARCH_LIST from the device, MAX_JOBS),
#     in the background at low priority while stage A runs, timed into mmcv_build.log; stage B uses it.
# Everything the run reports goes to $OUT (or --out DIR): gpu_check.md, gpu_check.log, the benchmark tables
# and mmcv_build.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS="$ROOT/.whl"
REQS=("${PYTHON:-python3}" "$ROOT/mmfishnet/utils/requirements.py")  # the pins of requirements/*.txt
MMCV_VERSION=$("${REQS[@]}" version mmcv)

if [ "${1:-}" = "--fetch-wheels" ]; then
    # The GPU image: Python 3.12, torch, numpy 2, opencv, matplotlib, scipy, rich, pyyaml, regex... (the
    # device tool's KINDS.md); what it lacks is fetched here, pinned to the versions the project tests.
    mkdir -p "$WHEELS"
    PLAT=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    OPENMMLAB_PINS=($("${REQS[@]}" spec mmengine mmdet mmpretrain))
    python3 -m pip download --no-deps --only-binary=:all: "${PLAT[@]}" -d "$WHEELS" \
        "${OPENMMLAB_PINS[@]}" addict==2.4.0 yapf==0.43.0 termcolor==3.3.0 \
        terminaltables==3.1.10 shapely==2.2.0 pycocotools==2.0.11 mat4py==0.6.0 modelindex==0.0.2 \
        model-index==0.1.11 ordered-set==4.1.0 platformdirs==4.14.8 importlib-metadata==8.7.0 \
        setuptools==80.9.0
    # the sdist; pip download would build its metadata (needs torch), so take the file alone
    "${PYTHON:-$ROOT/.venv/bin/python}" -m pip download --no-deps --no-binary mmcv --no-build-isolation \
        -d "$WHEELS" "mmcv==$MMCV_VERSION" \
        || { echo "fetching the mmcv sdist needs torch importable (bash tools/setup_env.sh first)"; exit 1; }
    ls -la "$WHEELS"
    exit 0
fi

SMALL=0
for arg in "$@"; do [ "$arg" = "--small" ] && SMALL=1; done
OUT_DIR="${OUT:-$ROOT/work_dirs/gpu_check}"
for ((i = 1; i <= $#; i++)); do [ "${!i}" = "--out" ] && { j=$((i + 1)); OUT_DIR="${!j}"; }; done
mkdir -p "$OUT_DIR"

if [ "$SMALL" = 1 ]; then
    PY="${MMFISHNET_VENV:-$ROOT/.venv}/bin/python"
    exec "$PY" tools/gpu_check.py "$@"
fi

PY="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
LITE="$SITE-mmcv-lite"
FULL="$SITE-mmcv-full"
STATUS="$SITE-mmcv-build.status"   # "EXITCODE SECONDS" once the CUDA build has ended
BUILD_LOG="$SITE-mmcv-build.log"
T0=$(date +%s)
ls "$WHEELS"/mmcv-$MMCV_VERSION.tar.gz >/dev/null || { echo "no .whl/ here: run bash tools/gpu_check.sh --fetch-wheels first"; exit 1; }
export PYTHONPATH="$SITE:$ROOT"
export PYTHONUNBUFFERED=1

if [ -f "$SITE/.installed" ] && [ -d "$LITE/mmcv" ]; then
    echo "[gpu_check] reusing the stack installed by an earlier run on this machine ($SITE)"
else
    rm -rf "$SITE" "$LITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl
    echo "[gpu_check] wheels installed in $(( $(date +%s) - T0 )) s"
    # mmcv without ops (stage A): setup.py imports pkg_resources, hence setuptools < 81 from $SITE
    MMCV_WITH_OPS=0 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
        --target "$LITE" "$WHEELS/mmcv-$MMCV_VERSION.tar.gz" > "$OUT_DIR/mmcv_lite.log" 2>&1 \
        || { echo "[gpu_check] mmcv (no ops) failed to install:"; tail -20 "$OUT_DIR/mmcv_lite.log"; exit 1; }
    touch "$SITE/.installed"
    echo "[gpu_check] mmcv $MMCV_VERSION without ops installed in $(( $(date +%s) - T0 )) s"
fi

# mmcv with CUDA ops (stage B): built once, in its own process session at the lowest CPU priority, so that
# it goes on between two calls while the machine is held; a later run waits for it or reuses it.
ARCH=$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability(0))")
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$ARCH}"
PREBUILT="${GPU_CHECK_PREBUILT_MMCV:-$WHEELS/prebuilt/mmcv-full.tar.xz}"  # from an earlier run (see docs/benchmarks.md)
if [ ! -f "$STATUS" ] && ls "$PREBUILT"* >/dev/null 2>&1; then
    cat "$PREBUILT"* | xz -d | tar -xf - -C "$(dirname "$FULL")" && echo "0 0" > "$STATUS" \
        && echo "[gpu_check] mmcv with CUDA ops taken from $PREBUILT (built by an earlier run on this GPU kind)"
fi
NO_BUILD=0  # --only perf/perf-det: benchmarks must not share the machine with a compiler; stage B needs the prebuilt mmcv
for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = "--only" ]; then j=$((i + 1)); case ",${!j}," in *,perf,*|*,perf-det,*) NO_BUILD=1 ;; esac; fi
done
if [ -f "$STATUS" ] && [ "$(cut -d' ' -f1 "$STATUS")" = 0 ]; then
    echo "[gpu_check] reusing mmcv with CUDA ops built earlier ($FULL)"
elif [ "$NO_BUILD" = 1 ]; then
    echo "[gpu_check] --only perf/perf-det: mmcv is not built (carry .whl/prebuilt/ for the stage B rows)"
elif [ -f "$BUILD_LOG" ] && [ ! -f "$STATUS" ]; then
    echo "[gpu_check] the mmcv CUDA build started by an earlier run is still going"
else
    rm -rf "$FULL" "$STATUS"
    setsid nohup bash -c '
        b0=$(date +%s); src=$(mktemp -d)
        tar -xzf "$0/mmcv-'"$MMCV_VERSION"'.tar.gz" -C "$src"
        # torch >= 2.6 headers refuse C++17: the pinned mmcv hard-codes -std=c++17 (as tools/setup_env.sh does)
        sed -i "s/-std=c++17/-std=c++20/g" "$src/mmcv-'"$MMCV_VERSION"'/setup.py"
        code=0
        MMCV_WITH_OPS=1 FORCE_CUDA=1 nice -n 19 "$1" -m pip install -v --no-index --no-deps --no-build-isolation \
            --no-cache-dir --target "$2" "$src/mmcv-'"$MMCV_VERSION"'" || code=$?
        echo "$code $(( $(date +%s) - b0 ))" > "$3.tmp" && mv "$3.tmp" "$3"' \
        "$WHEELS" "$PY" "$FULL" "$STATUS" > "$BUILD_LOG" 2>&1 < /dev/null &
    echo "[gpu_check] mmcv CUDA build started (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=${MAX_JOBS:-$(nproc)} at nice 19)"
fi

# a SIGTERM (the device call's `timeout`) reaches gpu_check.py too, which stops its step and writes the report;
# with a trap, bash waits for it to finish instead of dying first
trap 'echo "[gpu_check] SIGTERM: gpu_check.py writes its report"' TERM
# stage A sees the lite mmcv; stage B's steps put the full one first (gpu_check.py switches PYTHONPATH);
# the budget (--budget, default 540 s) counts from this script's start
PYTHONPATH="$LITE:$PYTHONPATH" GPU_CHECK_FULL_MMCV="$FULL" "$PY" tools/gpu_check.py --t0 "$T0" \
    --out "$OUT_DIR" --build-status "$STATUS" "$@" || rc=$?
tail -c 60000 "$BUILD_LOG" > "$OUT_DIR/mmcv_build.log" 2>/dev/null || true
if [ "${GPU_CHECK_SAVE_BUILD:-0}" = 1 ] && [ -f "$STATUS" ] && [ "$(cut -d' ' -f1 "$STATUS")" = 0 ]; then
    # the CUDA build, for .whl/prebuilt/ of the next run: parts of 15 MiB (the device tool returns <= 16 MiB a file)
    tar -cf - -C "$(dirname "$FULL")" "$(basename "$FULL")" | xz -1 -T0 | split -b 15M -d - "$OUT_DIR/mmcv-full.tar.xz.part."
fi
rm -f "$OUT_DIR/mmcv_lite.log"
exit "${rc:-0}"
