#!/usr/bin/env bash
# Run a tools/ script as GPUS Slurm tasks (shared by slurm_train.sh and slurm_test.sh):
#   GPUS=16 bash tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [script args]
# GPUS (tasks in all, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK (default 5), SRUN_ARGS (extra
# srun flags). Each node is asked for --gres=gpu:$GPUS_PER_NODE; GRES overrides that request, and GRES=
# (empty) asks for none: partitions without GPUs (gloo on CPUs) or clusters that give GPUs another way.
# The tasks meet on the job's first host, at PORT if set, else a port derived from the Slurm job id
# (mmfishnet/utils/dist.py), so two jobs sharing a node do not collide.
set -euo pipefail
source "$(dirname "$0")/slurm_lib.sh"
PARTITION=$1
JOB_NAME=$2
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
GRES=${GRES-gpu:$GPUS_PER_NODE}
task_command "${@:3}"
srun -p "$PARTITION" --job-name="$JOB_NAME" ${GRES:+--gres="$GRES"} --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${TASK[@]}"
