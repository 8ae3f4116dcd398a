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
from typing import Optional

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as asked."""


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


TRUST_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


def trust_requested() -> bool:
    """Whether this process was told to trust checkpoint files: ``--trust-checkpoint`` sets torch's
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, which mmengine's own loading (resume, ``load_from``) obeys too."""
    return os.environ.get(TRUST_ENV, '0').lower() in ('1', 'y', 'yes', 'true')


def is_remote(path: str) -> bool:
    """A URL or another of mmengine's checkpoint prefixes (``https://``, ``s3://``, ``open-mmlab://``...)."""
    return '://' in str(path)


def _load_remote(path: str, map_location, weights_only: bool):
    """Read ``path`` with mmengine's ``CheckpointLoader`` (its schemes and file backends), deciding
    ``weights_only`` here: mmengine's HTTP loader asks torch for full unpickling, which torch's
    ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` overrides."""
    from mmengine.runner.checkpoint import CheckpointLoader
    names = ('TORCH_FORCE_WEIGHTS_ONLY_LOAD', TRUST_ENV)
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ[names[0] if weights_only else names[1]] = '1'
    try:
        return CheckpointLoader.load_checkpoint(path, map_location=map_location, logger='current')
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


def load_file(path: str, trust: bool = False, map_location='cpu', trust_flag: str = '--trust-source'):
    """``torch.load`` a file with ``weights_only=True``; with ``trust=True`` fall back to full
    unpickling when the file holds other objects. ``path`` may be a local file or, through mmengine's
    checkpoint loader, a URL or another of its prefixes and backends (:func:`is_remote`), read under the
    same rule. Every failure is a :class:`CheckpointError` whose message names the file and the fix."""
    if is_remote(path):
        def load(weights_only):
            return _load_remote(path, map_location, weights_only)
    elif not os.path.isfile(path):
        raise CheckpointError(f'no such checkpoint file: {path}')
    else:
        def load(weights_only):
            return torch.load(path, map_location=map_location, weights_only=weights_only)
    try:
        return load(True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)|but got <class '([^']+)'>", str(e))
        if found is None:  # not a disallowed type: the pickle itself is broken
            raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or not a '
                                  f'checkpoint): {_first_line(e)}') from e
        if trust:
            return load(False)
        raise CheckpointError(
            f'{path} holds a {found.group(1) or found.group(2)} object, not only tensors and plain values, so '
            f'it was not unpickled (torch weights_only=True). If you trust this file, pass {trust_flag}') from e
    except OSError as e:
        if not is_remote(path) or isinstance(e, IsADirectoryError):
            raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or '
                                  f'not a checkpoint): {_first_line(e)}') from e
        raise CheckpointError(f'{path} cannot be fetched: {_first_line(e)}') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or '
                              f'not a checkpoint): {_first_line(e)}') from e


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:200]


def atomic_write(path: str, write) -> None:
    """Call ``write(f)`` on a temporary binary file beside ``path``, flush it to disk, then rename it over
    ``path``: a reader sees the old file or the complete new one, never a partial one."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj, path: str) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: torch.save(obj, f))


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch zip checkpoint (every member present and its CRC right)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, RuntimeError, EOFError):
        return False


def find_resumable_checkpoint(work_dir: str):
    """The checkpoint to resume from: the one ``last_checkpoint`` names if it is complete, else the newest
    complete ``*.pth`` in ``work_dir``; None when there is none. Unlike mmengine's own look-up, a damaged
    ``last_checkpoint`` file or a partial checkpoint does not send training back to iteration 0."""
    import glob
    candidates = []
    pointer = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            candidates.append(named)
    candidates += sorted(glob.glob(os.path.join(work_dir, '*.pth')), key=os.path.getmtime, reverse=True)
    for path in dict.fromkeys(candidates):
        if os.path.isfile(path) and is_complete_checkpoint(path):
            return path
    return None


def load_pretrained_backbone(model: torch.nn.Module, checkpoint: str, prefix: str = '',
                             map_location='cpu', trust: Optional[bool] = None) -> dict:
    """Load ``checkpoint`` (its ``prefix`` part) into a FishNet backbone, refusing what does not fit.

    Unlike mmengine's ``Pretrained`` init (``strict=False``, mismatches only logged), every tensor of the
    stages the model builds must be present with the right shape; keys of stages it does not build (a
    classifier's score stage and head, for a detection backbone) are ignored. An official (unconverted)
    checkpoint, a ResNet checkpoint or one of another FishNet variant is named as such.
    ``checkpoint`` is a local file, a URL or another of mmengine's prefixes (see :func:`load_file`), read
    with ``weights_only=True`` unless ``trust`` (default: :func:`trust_requested`, i.e. ``--trust-checkpoint``).
    Returns ``dict(loaded=N, ignored=M)``.
    """
    raw = load_file(checkpoint, trust=trust_requested() if trust is None else trust, map_location=map_location,
                    trust_flag='--trust-checkpoint')
    state = raw.get('state_dict', raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f'{checkpoint} holds no state_dict')
    keys = list(state)
    if any(k.startswith(('fish.fish.', 'module.fish.fish.')) for k in keys):
        raise CheckpointError(f'{checkpoint} is an official FishNet checkpoint; convert it first: python '
                              f'tools/model_converters/fishnet_to_mmfishnet.py {checkpoint} converted.pth')
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not state or not any(k.startswith(('stem.', 'tail1.')) for k in state):
        looks_resnet = any(k.startswith(('layer1.', f'{prefix}layer1.', 'conv1.', f'{prefix}conv1.')) for k in keys)
        kind = 'a ResNet checkpoint' if looks_resnet else 'not a FishNet checkpoint'
        raise CheckpointError(f'{checkpoint} is {kind}: no FishNet weights under prefix {prefix!r} (its keys '
                              f'start like {", ".join(keys[:3])})')
    own = model.state_dict()
    mismatch = describe_mismatch(own, state)
    if mismatch:
        meta_arch = raw.get('meta', {}).get('arch') if isinstance(raw.get('meta'), dict) else None
        hint = f' (it was converted from {meta_arch})' if meta_arch else ''
        raise CheckpointError(f'{checkpoint} does not fit this FishNet{hint}: {mismatch}. Is it a checkpoint of '
                              f'another arch?')
    model.load_state_dict({k: state[k] for k in own}, strict=True)
    return dict(loaded=len(own), ignored=len(state) - len(own))


def describe_mismatch(own: dict, weights: dict):
    """None when every tensor of ``own`` is in ``weights`` with its shape, else what is missing or of
    another shape, with examples."""
    missing = [k for k in own if k not in weights]
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f'{len(missing)} of the model\'s {len(own)} tensors are missing, e.g. {", ".join(missing[:3])}')
    if wrong:
        parts.append(f'{len(wrong)} have another shape, e.g. {wrong[0]} {tuple(weights[wrong[0]].shape)} vs '
                     f'{tuple(own[wrong[0]].shape)}')
    return '; '.join(parts) or None
