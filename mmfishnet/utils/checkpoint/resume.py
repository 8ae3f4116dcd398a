# Copyright (c) mmfishnet contributors. All rights reserved.
"""Which checkpoint to resume from: the newest complete one."""
import glob
import os
import zipfile


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
