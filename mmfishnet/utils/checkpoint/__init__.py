# Copyright (c) mmfishnet contributors. All rights reserved.
"""Checkpoints: read safely (:mod:`.safe_load`, with the data types mmengine's Runner writes allowed by
:mod:`.weights_only`), written atomically (:mod:`.atomic`), the one to resume from (:mod:`.resume`), and
pretrained backbone weights loaded strictly (:mod:`.pretrained`)."""
from .atomic import atomic_save, atomic_write
from .pretrained import (OFFICIAL_PREFIXES, describe_mismatch, is_official_checkpoint, load_pretrained_backbone,
                         read_state_dict)
from .resume import find_resumable_checkpoint, is_complete_checkpoint
from .safe_load import TRUST_ENV, CheckpointError, is_remote, load_file, trust_requested
from .weights_only import allow_runner_checkpoint_types

__all__ = [
    'OFFICIAL_PREFIXES', 'TRUST_ENV', 'CheckpointError', 'allow_runner_checkpoint_types', 'atomic_save', 'atomic_write',
    'describe_mismatch', 'find_resumable_checkpoint', 'is_complete_checkpoint', 'is_official_checkpoint', 'is_remote',
    'load_file', 'load_pretrained_backbone', 'read_state_dict', 'trust_requested'
]
