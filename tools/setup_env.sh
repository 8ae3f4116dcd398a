#!/usr/bin/env bash
# Set up everything mmfishnet needs, idempotently, in a virtual environment.
#
#   bash tools/setup_env.sh            # creates/updates ./.venv
#   MMFISHNET_VENV=/path/to/venv bash tools/setup_env.sh
#
# What it does (each step is skipped when already done), with the versions pinned in requirements/*.txt
# (read through mmfishnet/utils/requirements.py; none is written here):
#   1. a venv (default ./.venv), with $PYTHON (default python3) checked first against the Python versions
#      mmfishnet runs on (requirements/python.txt; pip would say only "No matching distribution");
#   2. torch + torchvision, pinned as a pair (requirements/runtime.txt), and the build tools (build.txt);
#   3. mmcv *with its compiled ops*, built once from PyPI's sdist and kept as a wheel in
#      $MMFISHNET_CACHE (default ~/.cache/mmfishnet/wheels), keyed by Python, torch, torch's CUDA version and
#      the GPU architectures (tools/check_mmcv.py --wheel-key), so that a second run, or another clone or
#      node with the same software and GPUs, reuses it instead of rebuilding (~17 min);
#   4. mmengine, mmdet, mmpretrain, pycocotools, pytest (tests.txt), and mmfishnet itself (-e);
#   5. mmsegmentation with ftfy and regex;
#   6. the export and logging extras (optional.txt): onnx, onnxruntime, onnxscript (torch's ONNX exporter),
#      tensorboard;
#   7. a last check that every requirement of requirements/*.txt is met.
# On a machine where torch sees CUDA, mmcv's CUDA ops are built too, for its GPUs, and the check runs them
# on a GPU (tools/check_mmcv.py). On a machine without GPUs (a login node) building for GPU nodes:
#   FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" bash tools/setup_env.sh   # nvcc of torch's CUDA on PATH
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMFISHNET_VENV:-$ROOT/.venv}"
CACHE="${MMFISHNET_CACHE:-$HOME/.cache/mmfishnet}"
PY_BASE="${PYTHON:-python3}"

log() { printf '[setup_env] %s\n' "$*"; }

# The Python range, ">=X.Y,<X.Y" (requirements/python.txt, setup.py's python_requires), read here with sed:
# the interpreter that would read it is what is being checked.
PY_RANGE=$(sed -e 's/#.*//' "$ROOT/requirements/python.txt" | tr -d '[:space:]')
PY_LOWEST=${PY_RANGE#*>=}
PY_LOWEST=${PY_LOWEST%%,*}
version_lt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }
python_in_range() {  # python_in_range X.Y: is Python X.Y one of $PY_RANGE?
    local spec
    for spec in ${PY_RANGE//,/ }; do
        case $spec in
            '>='*) ! version_lt "$1" "${spec#>=}" || return 1 ;;
            '<'*) version_lt "$1" "${spec#<}" || return 1 ;;
            *) log "ERROR: requirements/python.txt: '$spec' is not of the form >=X.Y or <X.Y"; exit 1 ;;
        esac
    done
}
check_python() {  # check_python PYTHON WHAT FIX: stop with one line naming the fix unless PYTHON is in range
    local version
    version=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
        || { log "ERROR: cannot run $1 ($2); mmfishnet needs Python $PY_RANGE: $3"; exit 1; }
    python_in_range "$version" || {
        log "ERROR: $2 is Python $version; mmfishnet needs Python $PY_RANGE (requirements/python.txt): $3"
        exit 1; }
}
FIX="run PYTHON=python$PY_LOWEST bash tools/setup_env.sh (or another interpreter of that range)"

if [ ! -x "$VENV/bin/python" ]; then
    check_python "$PY_BASE" "PYTHON=$PY_BASE" "$FIX"
    log "creating venv at $VENV"
    "$PY_BASE" -m venv "$VENV"
else
    check_python "$VENV/bin/python" "the venv at $VENV" "remove it (rm -rf $VENV) and $FIX"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)

# The pins, from requirements/*.txt: `reqs spec PKG...` prints their requirement lines, `reqs version PKG`
# the version pinned with ==, `reqs lines FILE...` every line of those files. One substitution per assignment,
# so that a failing read stops the script (set -e).
reqs() { "$PY" "$ROOT/mmfishnet/utils/requirements.py" "$@"; }
TORCH_PINS=($(reqs spec torch torchvision))
MMCV_VERSION=$(reqs version mmcv)
BUILD_PINS=($(reqs lines build))
OPENMMLAB_PINS=($(reqs spec mmengine mmdet mmpretrain))
NUMPY_PIN=$(reqs spec numpy)
MMCV_DEPS=($(reqs spec opencv-python numpy mmengine))  # with mmcv's own unpinned runtime requirements, below
OTHER_PINS=($(reqs spec mmengine mmdet mmpretrain pycocotools numpy opencv-python))
TEST_PINS=($(reqs lines tests))
SEG_PINS=($(reqs spec mmsegmentation ftfy regex))
SEG_VERSION=$(reqs version mmsegmentation)
SEG_WITH=($(reqs spec mmcv mmengine numpy))  # keeps the built mmcv and the pinned mmengine, numpy
EXTRA_PINS=($(reqs lines optional))

have() {  # have PKG==VERSION...: is exactly that version of each installed in the venv?
    local pin
    for pin in "$@"; do
        [ "$("$PY" -c "import importlib.metadata as m; print(m.version('${pin%%==*}'))" 2>/dev/null)" \
            = "${pin#*==}" ] || return 1
    done
}

if ! have "${TORCH_PINS[@]}"; then
    log "installing ${TORCH_PINS[*]}"
    "${PIP[@]}" install "${TORCH_PINS[@]}" "${BUILD_PINS[@]}"
else
    "${PIP[@]}" install -q "${BUILD_PINS[@]}"
fi

# mmcv of this version whose ops run here: on a GPU, its CUDA ops on a CUDA tensor (tools/check_mmcv.py)
MMCV_CHECK=("$PY" "$ROOT/tools/check_mmcv.py")
mmcv_ops_ok() { "${MMCV_CHECK[@]}" "$MMCV_VERSION" >/dev/null 2>&1; }

if ! mmcv_ops_ok; then
    flavour=$("${MMCV_CHECK[@]}" --wheel-key)
    WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$flavour"
    mkdir -p "$WHEEL_DIR"
    wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        if [[ $flavour != *-cpu ]] \
                && ! "$PY" -c "from torch.utils.cpp_extension import CUDA_HOME; assert CUDA_HOME" 2>/dev/null; then
            log "ERROR: building mmcv's CUDA ops ($flavour) needs the CUDA toolkit of torch's CUDA version" \
                "(nvcc on PATH or CUDA_HOME)"
            exit 1
        fi
        log "building mmcv $MMCV_VERSION with ops ($flavour); this takes ~17 min on 2 cores, once"
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        # Fetch the sdist only (no metadata build needs to succeed for the download itself).
        "${PIP[@]}" download --no-deps --no-binary mmcv --no-build-isolation -d "$work" "mmcv==$MMCV_VERSION"
        tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
        src="$work/mmcv-$MMCV_VERSION"
        # torch >= 2.6 headers refuse C++17: the pinned mmcv hard-codes -std=c++17.
        sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$work/dist" "$src"
        mv "$work"/dist/mmcv-"$MMCV_VERSION"-*.whl "$WHEEL_DIR"/
        wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
    else
        log "reusing cached $wheel"
    fi
    "${PIP[@]}" install --no-deps --force-reinstall "$wheel"
    # mmcv's own runtime requirements (its wheel was installed without deps); mmcv.ops needs mmengine.
    "${PIP[@]}" install -q addict packaging Pillow pyyaml yapf "${MMCV_DEPS[@]}"
    mmcv_ops_ok || { log "ERROR: mmcv installed from $wheel but its ops do not run here:";
        "${MMCV_CHECK[@]}" "$MMCV_VERSION" || true; exit 1; }
fi
log "$("${MMCV_CHECK[@]}" "$MMCV_VERSION")"

if ! have "${OPENMMLAB_PINS[@]}" || ! reqs check tests >/dev/null 2>&1 \
        || ! "$PY" -c "import mmfishnet, pytest, pycocotools" >/dev/null 2>&1; then
    log "installing ${OTHER_PINS[*]} ${TEST_PINS[*]} and mmfishnet (editable)"
    "${PIP[@]}" install "${OTHER_PINS[@]}" "${TEST_PINS[@]}" "mmcv==$MMCV_VERSION"
    "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
fi

# mmsegmentation (its last release). Its requirements name no mmcv/mmengine, so installing it leaves the
# built mmcv alone; at import it asserts 2.0.0rc4 <= mmcv < 2.2.0 (ours passes) and mmengine < 1.0.
# mmseg.utils imports ftfy and regex (its CLIP tokenizer), which it lists only as extras: pinned with it.
mmseg_ok() { "$PY" -c "import mmseg.utils, mmseg.models; assert mmseg.__version__ == '$SEG_VERSION'" >/dev/null 2>&1; }
if ! mmseg_ok; then
    log "installing ${SEG_PINS[*]}"
    "${PIP[@]}" install "${SEG_PINS[@]}" "${SEG_WITH[@]}"
    mmseg_ok || { log "ERROR: mmsegmentation installed but does not import:";
        "$PY" -c "import mmseg.utils, mmseg.models" || true; exit 1; }
fi

# ONNX export (tools/deployment/pytorch2onnx.py) and the opt-in TensorBoard logging (requirements/optional.txt)
if ! have "${EXTRA_PINS[@]}"; then
    log "installing ${EXTRA_PINS[*]}"
    "${PIP[@]}" install "${EXTRA_PINS[@]}" "$NUMPY_PIN"
fi

# every pin met (a step skipped as done, or a later install that moved a package, would show here)
reqs check runtime build optional tests || { log "ERROR: the venv at $VENV does not meet requirements/*.txt" \
    "(above); rerun after removing it, or install those versions"; exit 1; }

"$PY" - <<'PYEOF'
import mmcv, mmdet, mmengine, mmpretrain, torch, torchvision
from mmcv.ops import RoIAlign, nms  # noqa: F401  compiled ops present
import mmfishnet  # noqa: F401
print(f'[setup_env] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, cuda available: {torch.cuda.is_available()}')
PYEOF
