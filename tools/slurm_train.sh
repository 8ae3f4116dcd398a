#!/usr/bin/env bash
# Training on a Slurm cluster with srun:
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# Run from a login node, srun allocates the job. SIGNAL_SECONDS (default 300; 0 for none): Slurm sends the
# tasks SIGUSR1 that many seconds before the time limit (srun --signal); they save WORK_DIR/latest.pth at
# the end of the iteration in progress and exit with code 75, and then, unless REQUEUE=0, srun runs again
# with --resume (a new job). Inside an allocation (an sbatch job, salloc) srun ignores --signal and no task
# would get the warning: submit tools/slurm_sbatch.sh instead, which asks for it as the job's own. On
# SIGTERM (preemption, scancel) the tasks save too and exit with 143, which is not restarted here: a
# preempting Slurm requeues the job itself where it is set up to, and a cancelled job stays cancelled.
# Other settings: tools/slurm_run.sh. docs/fault_tolerance.md says what each event costs.
set -uo pipefail
source "$(dirname "$0")/slurm_lib.sh"
SIGNAL_SECONDS=${SIGNAL_SECONDS:-300}
REQUEUE=${REQUEUE:-1}
if [ -n "${SLURM_JOB_ID:-}" ] && [ "$SIGNAL_SECONDS" != 0 ]; then
    echo "slurm_train.sh: inside job $SLURM_JOB_ID srun ignores --signal, so SIGNAL_SECONDS=$SIGNAL_SECONDS" \
        "cannot reach the tasks: submit tools/slurm_sbatch.sh (sbatch ... tools/slurm_sbatch.sh CONFIG WORK_DIR)" >&2
fi
if [ "$SIGNAL_SECONDS" != 0 ]; then
    export SRUN_ARGS="--signal=USR1@$SIGNAL_SECONDS ${SRUN_ARGS:-}"
fi
ARGS=("$1" "$2" train.py "$3" --work-dir="$4" "${@:5}")
bash "$TOOLS/slurm_run.sh" "${ARGS[@]}"
code=$?
while [ "$code" = "$REQUEUE_EXIT_CODE" ] && [ "$REQUEUE" != 0 ]; do
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        requeue_job slurm_train.sh "bash tools/slurm_train.sh $* --resume (the same work dir)"
        exit "$code"
    fi
    echo "slurm_train.sh: training stopped on a signal; starting it again with --resume" >&2
    bash "$TOOLS/slurm_run.sh" "${ARGS[@]}" --resume
    code=$?
done
exit "$code"
