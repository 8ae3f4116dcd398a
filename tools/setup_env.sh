#!/usr/bin/env bash
# Set up everything mmfishnet needs, idempotently, in a virtual environment.
#
#   bash tools/setup_env.sh            # creates/updates ./.venv
#   MMFISHNET_VENV=/path/to/venv bash tools/setup_env.sh
#
# What it does (each step is skipped when already done):
#   1. a venv (Python >= 3.9; default ./.venv);
#   2. torch 2.14.1 + torchvision 0.29.1, pinned as a pair;
#   3. mmcv 2.1.0 *with its compiled ops*, built once from PyPI's sdist and kept as a wheel in
#      $MMFISHNET_CACHE (default ~/.cache/mmfishnet/wheels), keyed by Python, torch and CPU/CUDA, so that
#      a second run, or another clone on the same machine, reuses it instead of rebuilding (~17 min);
#   4. mmengine 0.10.7, mmdet 3.3.0, mmpretrain 1.2.0, pycocotools, pytest, and mmfishnet itself (-e);
#   5. the export and logging extras: onnx, onnxruntime, onnxscript (torch's ONNX exporter), tensorboard.
# On a machine where torch sees CUDA (or with FORCE_CUDA=1 and nvcc on PATH), mmcv's CUDA ops are built
# too and the wheel is cached under a separate "cuda" key.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMFISHNET_VENV:-$ROOT/.venv}"
CACHE="${MMFISHNET_CACHE:-$HOME/.cache/mmfishnet}"
PY_BASE="${PYTHON:-python3}"

TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
# setuptools: torch wants >= 77; mmcv 2.1.0's setup.py imports pkg_resources (gone in setuptools 81).
BUILD_PINS=("setuptools>=77,<81" wheel ninja)
OTHER_PINS=(mmengine==0.10.7 mmdet==3.3.0 mmpretrain==1.2.0 pycocotools "numpy<2" "opencv-python<4.11" pytest)

log() { printf '[setup_env] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    "$PY_BASE" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)

have() {  # have PKG VERSION: is exactly that version installed in the venv?
    [ "$("$PY" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null)" = "$2" ]
}

if ! have torch 2.14.1 || ! have torchvision 0.29.1; then
    log "installing ${TORCH_PINS[*]}"
    "${PIP[@]}" install "${TORCH_PINS[@]}" "${BUILD_PINS[@]}"
else
    "${PIP[@]}" install -q "${BUILD_PINS[@]}"
fi

mmcv_ops_ok() { "$PY" -c "import mmcv; assert mmcv.__version__ == '$MMCV_VERSION'; from mmcv.ops import RoIAlign, nms" >/dev/null 2>&1; }

if ! mmcv_ops_ok; then
    flavour=$("$PY" -c "import os, sys, torch; cuda = torch.cuda.is_available() or os.getenv('FORCE_CUDA') == '1'; print(f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__.split(\"+\")[0]}-' + ('cuda' if cuda else 'cpu'))")
    WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-$flavour"
    mkdir -p "$WHEEL_DIR"
    wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        log "building mmcv $MMCV_VERSION with ops ($flavour); this takes ~17 min on 2 cores, once"
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        # Fetch the sdist only (no metadata build needs to succeed for the download itself).
        "${PIP[@]}" download --no-deps --no-binary mmcv --no-build-isolation -d "$work" "mmcv==$MMCV_VERSION"
        tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
        src="$work/mmcv-$MMCV_VERSION"
        # torch >= 2.6 headers refuse C++17: mmcv 2.1.0 hard-codes -std=c++17.
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
    "${PIP[@]}" install -q addict packaging Pillow pyyaml yapf "opencv-python<4.11" "numpy<2" mmengine==0.10.7
    mmcv_ops_ok || { log "ERROR: mmcv installed but 'from mmcv.ops import RoIAlign, nms' fails:";
        "$PY" -c "from mmcv.ops import RoIAlign, nms" || true; exit 1; }
else
    log "mmcv $MMCV_VERSION with ops already installed"
fi

if ! have mmdet 3.3.0 || ! have mmpretrain 1.2.0 || ! have mmengine 0.10.7 \
        || ! "$PY" -c "import mmfishnet, pytest, pycocotools" >/dev/null 2>&1; then
    log "installing ${OTHER_PINS[*]} and mmfishnet (editable)"
    "${PIP[@]}" install "${OTHER_PINS[@]}" "mmcv==$MMCV_VERSION"
    "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
fi

# ONNX export (tools/deployment/pytorch2onnx.py: torch.onnx.export(dynamo=True) needs onnxscript) and the
# opt-in TensorBoard logging; versions checked with torch 2.14.1, Python 3.11 and numpy 1.26.
EXTRA_PINS=(onnx==1.23.2 onnxruntime==1.31.1 onnxscript==0.7.2 tensorboard==2.21.0)
if ! have onnx 1.23.2 || ! have onnxruntime 1.31.1 || ! have onnxscript 0.7.2 || ! have tensorboard 2.21.0; then
    log "installing ${EXTRA_PINS[*]}"
    "${PIP[@]}" install "${EXTRA_PINS[@]}" "numpy<2"
fi

"$PY" - <<'PYEOF'
import mmcv, mmdet, mmengine, mmpretrain, torch, torchvision
from mmcv.ops import RoIAlign, nms  # noqa: F401  compiled ops present
import mmfishnet  # noqa: F401
print(f'[setup_env] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}, '
      f'mmpretrain {mmpretrain.__version__}, cuda available: {torch.cuda.is_available()}')
PYEOF
