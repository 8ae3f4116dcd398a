#!/usr/bin/env bash
# Multi-process training on one or more machines:
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# One process per GPU with NCCL where CUDA is present; on a CPU-only machine NUM_PROCESSES gloo processes
# (see mmfishnet/utils/dist.py). Several machines: set NNODES, NODE_RANK, MASTER_ADDR, PORT on each.
set -euo pipefail
CONFIG=$1
NPROC=$2
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
