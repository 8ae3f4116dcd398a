#!/usr/bin/env bash
# Start NUM_PROCESSES copies of a tools/ script with torch.distributed.run (shared by dist_train.sh and
# dist_test.sh):  bash tools/dist_run.sh SCRIPT NUM_PROCESSES [script args]
# One process per GPU with NCCL where CUDA is present; on a CPU-only machine gloo processes (see
# mmfishnet/utils/dist.py). Several machines: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each.
# The rendezvous port: PORT when set; on one machine otherwise a free one (torchrun --standalone), so two
# jobs on one node never collide; on several machines one derived from SLURM_JOB_ID inside a Slurm job,
# else 29500 (set PORT: every node must use the same).
set -euo pipefail
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
NNODES=${NNODES:-1}
if [ -n "${PORT:-}" ] || [ "$NNODES" != 1 ]; then
    if [ -z "${PORT:-}" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        PORT=$((20000 + SLURM_JOB_ID % 10000))  # as mmfishnet.utils.dist.slurm_master_port
    fi
    RDZV=(--nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
          --master_port="${PORT:-29500}")
else
    RDZV=(--standalone --nnodes=1)
fi
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NPROC" \
    "$TOOLS/$SCRIPT" "${@:3}" --launcher pytorch
