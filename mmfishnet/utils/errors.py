# Copyright (c) mmfishnet contributors. All rights reserved.
"""The project's error types, in one module that imports nothing of mmfishnet (a leaf of the import graph),
so every module can raise them without importing the modules that catch them.

The command-line tools end with one line ``error: ...`` and exit code 2 on any of them
(:func:`mmfishnet.utils.cli.run_cli`).
"""


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


__all__ = ['CheckpointError', 'ConversionError', 'NonFiniteLossError', 'UserError']
