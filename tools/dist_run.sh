#!/usr/bin/env bash
# Start NUM_PROCESSES copies of a tools/ script with torch.distributed.run (shared by dist_train.sh and
# dist_test.sh):  bash tools/dist_run.sh SCRIPT NUM_PROCESSES [script args]
# One process per GPU with NCCL where CUDA is present; on a CPU-only machine gloo processes (see
# mmfishnet/utils/dist.py). Several machines: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each.
# The rendezvous port: PORT when set; on one machine otherwise a free one (torchrun --standalone), so two
# jobs on one node never collide; on several machines the Slurm job's (mmfishnet.utils.dist.slurm_master_port),
# else 29500 (set PORT: every node must use the same).
# MAX_RESTARTS=N (default 0): when a process dies, torchrun restarts the whole group up to N times and the
# restarted processes resume from the newest checkpoint of this launch (tools/train.py). Several machines
# then meet through torchrun's c10d rendezvous hosted by NODE_RANK 0, under the id RUN_ID (default: the
# Slurm job id; outside Slurm set RUN_ID to the same new value on every machine).
set -euo pipefail
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"
NNODES=${NNODES:-1}
MAX_RESTARTS=${MAX_RESTARTS:-0}
if [ -n "${PORT:-}" ] || [ "$NNODES" != 1 ]; then
    if [ -z "${PORT:-}" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        PORT=$("$PYTHON" -c 'from mmfishnet.utils.dist import slurm_master_port; print(slurm_master_port())')
    fi
    PORT=${PORT:-29500}
    if [ "$NNODES" != 1 ] && [ "$MAX_RESTARTS" != 0 ]; then
        RUN_ID=${RUN_ID:-${SLURM_JOB_ID:-}}
        if [ -z "$RUN_ID" ]; then
            echo "error: MAX_RESTARTS on several machines needs RUN_ID, the same new value on every machine" >&2
            exit 2
        fi
        IS_HOST=$([ "${NODE_RANK:-0}" = 0 ] && echo 1 || echo 0)
        RDZV=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="${MASTER_ADDR:-127.0.0.1}:$PORT"
              --rdzv-id="$RUN_ID" --rdzv-conf="is_host=$IS_HOST")
    else
        RDZV=(--nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
              --master_port="$PORT")
    fi
else
    RDZV=(--standalone --nnodes=1)
fi
exec "$PYTHON" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NPROC" --max-restarts="$MAX_RESTARTS" \
    "$TOOLS/$SCRIPT" "${@:3}" --launcher pytorch
