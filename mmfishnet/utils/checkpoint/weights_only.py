# Copyright (c) mmfishnet contributors. All rights reserved.
"""The data types of mmengine's checkpoints on torch's ``weights_only`` allow-list.

torch >= 2.6 unpickles with ``weights_only=True`` by default: only tensors and plain Python values load,
so a checkpoint file cannot run code. mmengine 0.10.7's Runner writes a few more *data* types into its
checkpoints (numpy scalars and arrays in ``meta`` and in the message hub's history buffers), and then
cannot read its own checkpoints back on resume, ``load_from`` and test. Instead of turning
``weights_only`` off (which would unpickle anything), :func:`allow_runner_checkpoint_types` adds exactly
those data types to torch's allow-list, once, when ``mmfishnet`` is imported. Anything else in a pickle
still fails to load; :func:`~mmfishnet.utils.checkpoint.load_file` then says so and names the explicit
opt-in.
"""
import torch


def _runner_checkpoint_types() -> list:
    import numpy as np
    # numpy 2 renamed np.core to np._core (the old name warns, and may go); numpy < 2 (pinned here) has np.core
    multiarray = np._core.multiarray if int(np.__version__.split('.')[0]) >= 2 else np.core.multiarray
    types = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    types += [type(np.dtype(name)) for name in
              ('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
               'uint64', 'bool', 'complex64', 'complex128')]
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
