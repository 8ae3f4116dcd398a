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



class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint to resume from (raised on every rank by
    :class:`~mmfishnet.engine.LatestCheckpointHook`). ``exit_code``: :data:`REQUEUE_EXIT_CODE` after SIGUSR1
    (Slurm's warning before the time limit: ``tools/slurm_train.sh`` requeues), 128 + the signal's number after
    any other (SIGTERM: 143, as a process killed by it; a preempting Slurm requeues the job itself where
    configured, and a cancelled job stays cancelled)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = REQUEUE_EXIT_CODE if signum == signal.SIGUSR1 else 128 + signum


__all__ = ['CheckpointError', 'ConversionError', 'NonFiniteLossError', 'REQUEUE_EXIT_CODE', 'TrainingInterrupted',
           'UserError']
