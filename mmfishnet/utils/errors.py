# Copyright (c) mmfishnet contributors. All rights reserved.
"""The project's error types, in one module that imports nothing of mmfishnet (a leaf of the import graph),
so every module can raise them without importing the modules that catch them.

The command-line tools end with one line ``error: ...`` and exit code 2 on any of them
(:func:`mmfishnet.utils.cli.run_cli`).
"""
import signal

REQUEUE_EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, the user is invited to retry"


class UserError(ValueError):
    """An error the user can fix from the message alone (bad path, bad argument, wrong file)."""


class CheckpointError(UserError):
    """A checkpoint file that cannot be read or used as asked (missing, corrupted, untrusted content, official
    and not yet converted, of another model)."""


class ConversionError(UserError):
    """The source of the converter is not a complete official FishNet checkpoint."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (raised on every rank by
    :class:`~mmfishnet.engine.NonFiniteLossHook`)."""



def stop_exit_code(signum: int) -> int:
    """The exit code of a run stopped by signal ``signum``: :data:`REQUEUE_EXIT_CODE` after SIGUSR1 (Slurm's
    warning before the time limit: ``tools/slurm_sbatch.sh`` requeues), 128 + the signal's number after any
    other (SIGTERM: 143, as a process killed by it; a preempting Slurm requeues the job itself where
    configured, and a cancelled job stays cancelled)."""
    return REQUEUE_EXIT_CODE if signum == signal.SIGUSR1 else 128 + signum


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint to resume from (raised on every rank by
    :class:`~mmfishnet.engine.LatestCheckpointHook`). ``exit_code``: :func:`stop_exit_code`."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = stop_exit_code(signum)


class StoppedEarly(BaseException):
    """A stop signal arrived before this process had trained anything since it started (start-up, building,
    loading, the first compile): it ends at once with :func:`stop_exit_code`, as there is nothing to save
    (:mod:`mmfishnet.utils.stop_signals`). A ``BaseException``, as ``KeyboardInterrupt``, so that no
    ``except Exception`` of the code it interrupts swallows it."""

    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        then = ('requeue the job (tools/slurm_sbatch.sh does): it resumes by itself' if signum == signal.SIGUSR1
                else 'run the same command again (add --resume if this run was itself resumed by hand)')
        super().__init__(f'stopped on {name} before the first training iteration ended, with nothing to save; '
                         f'{then}')
        self.signum, self.exit_code = signum, stop_exit_code(signum)


__all__ = ['CheckpointError', 'ConversionError', 'NonFiniteLossError', 'REQUEUE_EXIT_CODE', 'StoppedEarly',
           'TrainingInterrupted', 'UserError', 'stop_exit_code']
