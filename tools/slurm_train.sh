#!/usr/bin/env bash
# Training on a Slurm cluster:
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# SIGNAL_SECONDS (default 300; 0 for none): Slurm sends the tasks SIGUSR1 that many seconds before the time
# limit (srun --signal); they save WORK_DIR/latest.pth at the end of the iteration in progress and exit with
# code 75. Then, unless REQUEUE=0: inside a batch job (sbatch) the job is requeued (scontrol requeue; the
# requeued job keeps its id and tools/train.py resumes by itself); started from a login node, srun runs
# again with --resume (a new job). On SIGTERM (preemption, scancel) the tasks save too and exit with 143,
# which is not requeued here: a preempting Slurm requeues the job itself where it is set up to, and a
# cancelled job stays cancelled. Other settings: tools/slurm_run.sh.
set -uo pipefail
TOOLS="$(cd "$(dirname "$0")" && pwd)"
SIGNAL_SECONDS=${SIGNAL_SECONDS:-300}
REQUEUE=${REQUEUE:-1}
REQUEUE_EXIT_CODE=75  # mmfishnet.utils.errors.REQUEUE_EXIT_CODE (tests/test_faults.py checks they agree)
if [ "$SIGNAL_SECONDS" != 0 ]; then
    export SRUN_ARGS="--signal=USR1@$SIGNAL_SECONDS ${SRUN_ARGS:-}"
fi
ARGS=("$1" "$2" train.py "$3" --work-dir="$4" "${@:5}")
bash "$TOOLS/slurm_run.sh" "${ARGS[@]}"
code=$?
while [ "$code" = "$REQUEUE_EXIT_CODE" ] && [ "$REQUEUE" != 0 ]; do
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        echo "slurm_train.sh: training stopped on a signal; requeueing job $SLURM_JOB_ID" >&2
        scontrol requeue "$SLURM_JOB_ID" || echo "slurm_train.sh: scontrol requeue failed; resubmit this job" >&2
        exit "$code"
    fi
    echo "slurm_train.sh: training stopped on a signal; starting it again with --resume" >&2
    bash "$TOOLS/slurm_run.sh" "${ARGS[@]}" --resume
    code=$?
done
exit "$code"
