# Copyright (c) mmfishnet contributors. All rights reserved.
"""Checkpoints: read safely (:mod:`.safe_load`, with the data types mmengine's Runner writes allowed by
:mod:`.weights_only`), written atomically (:mod:`.atomic`), the one to resume from (:mod:`.resume`), and
pretrained backbone weights loaded strictly (:mod:`.pretrained`)."""
from .atomic import atomic_save, atomic_write
from .pretrained import describe_mismatch, load_pretrained_backbone
from .resume import find_resumable_checkpoint, is_complete_checkpoint
from .safe_load import TRUST_ENV, CheckpointError, is_remote, load_file, trust_requested
from .weights_only import allow_runner_checkpoint_types

__all__ = [
    'TRUST_ENV', 'CheckpointError', 'allow_runner_checkpoint_types', 'is_remote', 'trust_requested', 'atomic_save', 'atomic_write', 'describe_mismatch',
    'find_resumable_checkpoint', 'is_complete_checkpoint', 'load_file', 'load_pretrained_backbone'
]
