# Copyright (c) mmfishnet contributors. All rights reserved.
"""Reading and writing checkpoints safely.

torch >= 2.6 unpickles with ``weights_only=True`` by default: only tensors and plain Python values load,
so a checkpoint file cannot run code. mmengine 0.10.7's Runner writes a few more *data* types into its
checkpoints (numpy scalars and arrays in ``meta`` and in the message hub's history buffers), and then
cannot read its own checkpoints back on resume, ``load_from`` and test. Instead of turning
``weights_only`` off (which would unpickle anything), :func:`allow_runner_checkpoint_types` adds exactly
those data types to torch's allow-list, once, when ``mmfishnet`` is imported. Anything else in a pickle
still fails to load; :func:`load_file` then says so and names the explicit opt-in.
"""
import os
import pickle
import re
import tempfile
import zipfile

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as asked."""


def _runner_checkpoint_types() -> list:
    import numpy as np
    multiarray = np.core.multiarray  # numpy < 2 (pinned); numpy 2 keeps this alias
    types = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    types += [type(np.dtype(name)) for name in
              ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool')]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        types.append(HistoryBuffer)
    except ImportError:  # pragma: no cover
        pass
    return types


_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self) -> dict:
    """mmengine's ``HistoryBuffer.__getstate__`` pickles its class-level table of statistics functions,
    which needs ``getattr`` at load time: a global torch rightly refuses to allow-list (it would let a
    file call anything). The four default functions are re-registered by every HistoryBuffer anyway, so
    they are left out; only custom ones (registered by the user) are kept."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {k: v for k, v in self._statistics_methods.items() if k not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def allow_runner_checkpoint_types() -> None:
    """Let ``weights_only=True`` read the checkpoints mmengine's Runner writes: allow-list the numpy and
    HistoryBuffer data types, and make HistoryBuffer pickle without function references."""
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        HistoryBuffer.__getstate__ = _history_buffer_getstate
    except ImportError:  # pragma: no cover
        pass
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch >= 2.4
        add(_runner_checkpoint_types())


def load_file(path: str, trust: bool = False, map_location='cpu', trust_flag: str = '--trust-source'):
    """``torch.load`` a file with ``weights_only=True``; with ``trust=True`` fall back to full
    unpickling when the file holds other objects. Every failure is a :class:`CheckpointError` or
    ``FileNotFoundError`` whose message names the file and the fix."""
    if not os.path.isfile(path):
        raise FileNotFoundError(2, 'no such checkpoint file', path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'Unsupported global: GLOBAL (\S+)', str(e))
        if found is None:  # not a disallowed type: the pickle itself is broken
            raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or not a '
                                  f'checkpoint): {_first_line(e)}') from e
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False)
        raise CheckpointError(
            f'{path} holds a {found.group(1)} object, not only tensors and plain values, so it was not '
            f'unpickled (torch weights_only=True). If you trust this file, pass {trust_flag}') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or '
                              f'not a checkpoint): {_first_line(e)}') from e


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:200]


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename it over
    ``path``: a reader sees the old file or the complete new one, never a partial one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.pth', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
