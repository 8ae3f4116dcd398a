#!/usr/bin/env bash
# Start NUM_PROCESSES copies of a tools/ script with torch.distributed.run (shared by dist_train.sh and
# dist_test.sh):  bash tools/dist_run.sh SCRIPT NUM_PROCESSES [script args]
# One process per GPU with NCCL where CUDA is present; on a CPU-only machine gloo processes (see
# mmfishnet/utils/dist.py). Several machines: set NNODES, NODE_RANK, MASTER_ADDR, PORT on each.
set -euo pipefail
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$TOOLS/$SCRIPT" "${@:3}" --launcher pytorch
