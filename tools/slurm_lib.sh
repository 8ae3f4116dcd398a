#!/usr/bin/env bash
# What the Slurm scripts share (sourced by slurm_run.sh, slurm_train.sh and slurm_sbatch.sh; not run itself):
# the command each task runs, the exit code that asks for a requeue, and the requeue itself.
# The code a run stopped by Slurm's warning signal exits with: mmfishnet.utils.errors.REQUEUE_EXIT_CODE
# (tests/test_faults.py checks they agree).
REQUEUE_EXIT_CODE=75
TOOLS=${TOOLS:-"$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"}
PYTHON=${PYTHON:-python}

task_command() {  # task_command SCRIPT [args]: sets TASK, what srun runs in each task
    TASK=(env PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -u "$TOOLS/$1" "${@:2}" --launcher slurm)
}

requeue_job() {  # requeue_job WHO RESUME_COMMAND: requeue this batch job, or say how to go on without it
    echo "$1: training stopped on Slurm's warning signal after saving; requeueing job $SLURM_JOB_ID" >&2
    if ! scontrol requeue "$SLURM_JOB_ID"; then
        # A new job has a new id, so it would not resume by itself and would overwrite the checkpoints:
        # name the command that resumes instead.
        echo "$1: Slurm refused to requeue job $SLURM_JOB_ID (not a batch job, or requeue disabled:" \
            "JobRequeue=0 without --requeue); nothing is lost: continue with ${*:2}" >&2
    fi
}
