# Copyright (c) mmfishnet contributors. All rights reserved.
"""Reading a checkpoint file with torch's safe loader (``weights_only=True``), local or through mmengine's
checkpoint loader (URLs and its other prefixes), and one clear error for every way that can fail."""
import os
import pickle
import re
import zipfile

import torch

from ..errors import CheckpointError

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
    same rule, except that a trusted remote file is fetched once and fully unpickled: mmengine's HTTP loader
    downloads on rank 0 while the other ranks wait at a barrier, so a second fetch after a ``weights_only``
    failure would bring rank 0 and the others to that barrier a different number of times, and every
    collective after it out of step. Every failure is a :class:`CheckpointError` whose message names the
    file and the fix."""
    if is_remote(path):
        def load(weights_only):
            return _load_remote(path, map_location, weights_only)
    elif not os.path.isfile(path):
        raise CheckpointError(f'no such checkpoint file: {path}')
    else:
        def load(weights_only):
            return torch.load(path, map_location=map_location, weights_only=weights_only)
    try:
        return load(not (trust and is_remote(path)))
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
