#!/usr/bin/env bash
#SBATCH --signal=USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
# Training as a Slurm batch job that goes on by itself after its time limit:
#   sbatch -p PARTITION --ntasks=N [--gres=gpu:K] [--time=...] tools/slurm_sbatch.sh CONFIG WORK_DIR [train.py options]
# Submit from the mmfishnet folder (Slurm runs a copy of this script; MMFISHNET_ROOT names the folder
# otherwise). The #SBATCH lines above ask Slurm to send every task SIGUSR1 300 s before the time limit
# (sbatch's own --signal=USR1@SECONDS overrides it; Slurm may send it up to a minute earlier), to allow a
# requeue, and to append every run's output to one file. On the warning the tasks save WORK_DIR/latest.pth
# and exit with code 75; this script then requeues the job (scontrol requeue), which keeps its id, and
# the requeued run resumes from that checkpoint by itself (tools/train.py). One task per GPU (--gres), or
# gloo on CPUs without --gres. CPUS_PER_TASK, SRUN_ARGS, PYTHON, PORT: as tools/slurm_run.sh.
# docs/fault_tolerance.md says what each event (time limit, scancel, preemption) costs.
set -uo pipefail
ROOT=${MMFISHNET_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [ ! -f "$ROOT/tools/slurm_lib.sh" ]; then
    echo "slurm_sbatch.sh: $ROOT/tools/slurm_lib.sh not found: submit from the mmfishnet folder or set" \
        "MMFISHNET_ROOT (Slurm runs a copy of this script)" >&2
    exit 2
fi
if [ $# -lt 2 ]; then
    echo "usage: sbatch -p PARTITION --ntasks=N tools/slurm_sbatch.sh CONFIG WORK_DIR [train.py options]" >&2
    exit 2
fi
TOOLS="$ROOT/tools"
source "$TOOLS/slurm_lib.sh"
echo "slurm_sbatch.sh: job $SLURM_JOB_ID, run $((${SLURM_RESTART_COUNT:-0} + 1)), $SLURM_NTASKS tasks" >&2
task_command train.py "$1" --work-dir="$2" "${@:3}"
srun --kill-on-bad-exit=1 ${CPUS_PER_TASK:+--cpus-per-task="$CPUS_PER_TASK"} ${SRUN_ARGS:-} "${TASK[@]}"
code=$?
if [ "$code" = "$REQUEUE_EXIT_CODE" ]; then
    requeue_job slurm_sbatch.sh "sbatch -p ${SLURM_JOB_PARTITION:-PARTITION} --ntasks=$SLURM_NTASKS [your other" \
        "sbatch options] tools/slurm_sbatch.sh $* --resume (the same work dir: --resume continues from its" \
        "newest complete checkpoint)"
fi
exit "$code"
