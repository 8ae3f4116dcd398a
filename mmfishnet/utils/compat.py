# Copyright (c) mmfishnet contributors. All rights reserved.
"""Compatibility with packages newer than the OpenMMLab releases we pin: each workaround here, once.

- **transformers >= 5 beside mmpretrain 1.2.0.** mmpretrain turns its multimodal models (BLIP, CLIP,
  ...) on whenever ``transformers >= 4.28`` is installed, and their modules fail to import with
  transformers 5 (APIs it removed): the first build of *any* mmpretrain model then stops with
  ``TypeError: NoneType takes no arguments``. GPU images ship transformers 5. FishNet uses none of
  those models, so :func:`disable_broken_mmpretrain_multimodal` switches them off (mmpretrain then
  registers its own placeholders for them, which say what to install if someone asks for one).
"""
import sys


def _major(version: str) -> int:
    head = version.split('.')[0]
    return int(head) if head.isdigit() else 0


def disable_broken_mmpretrain_multimodal() -> bool:
    """Before ``mmpretrain.models`` is imported, turn mmpretrain's multimodal models off where the installed
    transformers cannot import them. Returns True when it did."""
    from importlib import metadata
    try:
        if _major(metadata.version('transformers')) < 5 or _major(metadata.version('mmpretrain')) != 1:
            return False
    except metadata.PackageNotFoundError:
        return False
    if 'mmpretrain.models' in sys.modules:  # already imported (and already failed or worked): too late
        return False
    from mmpretrain.utils import dependency
    dependency.WITH_MULTIMODAL = False
    return True
