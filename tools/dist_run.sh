#!/usr/bin/env bash
# Start NUM_PROCESSES copies of a tools/ script with torch.distributed.run (shared by dist_train.sh and
# dist_test.sh):  bash tools/dist_run.sh SCRIPT NUM_PROCESSES [script args]
# One process per GPU with NCCL where CUDA is present; on a CPU-only machine gloo processes (see
# mmfishnet/utils/dist.py). Several machines: set NNODES, NODE_RANK, MASTER_ADDR and PORT on each.
# The rendezvous port: PORT when set; on one machine otherwise a free one (torchrun --standalone), so two
# jobs on one node never collide; on several machines the Slurm job's (mmfishnet.utils.dist.slurm_master_port),
# else 29500 (set PORT: every node must use the same).
# The launch's id (torchrun's rendezvous id, TORCHELASTIC_RUN_ID, which mmfishnet.utils.dist.launch_id reads):
# RUN_ID when set, else the Slurm job id, else on one machine a new one for each launch; several machines
# outside Slurm need RUN_ID (the same new value on every machine) for MAX_RESTARTS.
# MAX_RESTARTS=N (default 0): when a process dies, torchrun restarts the whole group up to N times and the
# restarted processes resume from the newest checkpoint of this launch (tools/train.py). The agents then
# meet through torchrun's c10d rendezvous hosted by NODE_RANK 0 (PORT), under the id RUN_ID.
set -euo pipefail
SCRIPT=$1
NPROC=$2
PYTHON=${PYTHON:-python}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
export PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}"
NNODES=${NNODES:-1}
MAX_RESTARTS=${MAX_RESTARTS:-0}
# A fresh store for the workers in every rendezvous round: torch 2.14.1's c10d rendezvous otherwise hands
# every attempt's workers the agent's one store, which outlives a restart, and a restarted group can read
# the dead attempt's keys (gloo's addresses, NCCL's unique id, both under the same names each attempt).
# With this set, DynamicRendezvousHandler.use_agent_store is False and next_rendezvous() publishes a new
# free port of NODE_RANK 0's machine for each round (torch/distributed/elastic/rendezvous/dynamic_rendezvous.py,
# RendezvousStoreInfo.build in rendezvous/api.py), on which worker rank 0 hosts that round's TCPStore
# (env://, TORCHELASTIC_USE_AGENT_STORE=False: agent/server/local_elastic_agent.py, _start_workers).
# The static rendezvous (used below only without restarts) always shares its store and ignores it.
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
if [ -n "${PORT:-}" ] || [ "$NNODES" != 1 ]; then
    if [ -z "${PORT:-}" ] && [ -n "${SLURM_JOB_ID:-}" ]; then
        PORT=$("$PYTHON" -c 'from mmfishnet.utils.dist import slurm_master_port; print(slurm_master_port())')
    fi
    PORT=${PORT:-29500}
    RUN_ID=${RUN_ID:-${SLURM_JOB_ID:-}}
    if [ -z "$RUN_ID" ] && [ "$NNODES" = 1 ]; then
        RUN_ID=$("$PYTHON" -c 'import uuid; print(uuid.uuid4().hex)')  # as torchrun --standalone does
    fi
    if [ "$MAX_RESTARTS" != 0 ]; then
        if [ -z "$RUN_ID" ]; then
            echo "error: MAX_RESTARTS on several machines needs RUN_ID, the same new value on every machine" >&2
            exit 2
        fi
        IS_HOST=$([ "${NODE_RANK:-0}" = 0 ] && echo 1 || echo 0)
        RDZV=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="${MASTER_ADDR:-127.0.0.1}:$PORT"
              --rdzv-id="$RUN_ID" --rdzv-conf="is_host=$IS_HOST")
    else
        RDZV=(--nnodes="$NNODES" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}"
              --master_port="$PORT" ${RUN_ID:+--rdzv-id="$RUN_ID"})
    fi
else
    RDZV=(--standalone --nnodes=1)
fi
exec "$PYTHON" -m torch.distributed.run "${RDZV[@]}" --nproc_per_node="$NPROC" --max-restarts="$MAX_RESTARTS" \
    "$TOOLS/$SCRIPT" "${@:3}" --launcher pytorch
