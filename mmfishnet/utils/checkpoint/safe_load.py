# Copyright (c) mmfishnet contributors. All rights reserved.
"""Reading a checkpoint file with torch's safe loader (``weights_only=True``), and one clear error for
every way that can fail."""
import os
import pickle
import re
import zipfile

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as asked."""


def load_file(path: str, trust: bool = False, map_location='cpu', trust_flag: str = '--trust-source'):
    """``torch.load`` a file with ``weights_only=True``; with ``trust=True`` fall back to full
    unpickling when the file holds other objects. Every failure is a :class:`CheckpointError` or
    ``FileNotFoundError`` whose message names the file and the fix."""
    if not os.path.isfile(path):
        raise FileNotFoundError(2, 'no such checkpoint file', path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)|but got <class '([^']+)'>", str(e))
        if found is None:  # not a disallowed type: the pickle itself is broken
            raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or not a '
                                  f'checkpoint): {_first_line(e)}') from e
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False)
        raise CheckpointError(
            f'{path} holds a {found.group(1) or found.group(2)} object, not only tensors and plain values, so '
            f'it was not unpickled (torch weights_only=True). If you trust this file, pass {trust_flag}') from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f'{path} cannot be read as a torch checkpoint (truncated, corrupted or '
                              f'not a checkpoint): {_first_line(e)}') from e


def _first_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:200]
