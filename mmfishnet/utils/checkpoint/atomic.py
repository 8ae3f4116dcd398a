# Copyright (c) mmfishnet contributors. All rights reserved.
"""Writing files so that a kill at any moment leaves the old file or the complete new one."""
import os
import tempfile

import torch


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
