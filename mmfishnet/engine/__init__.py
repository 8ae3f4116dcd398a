# Copyright (c) mmfishnet contributors. All rights reserved.
from .hooks import (AtomicLocalBackend, NonFiniteLossError, NonFiniteLossHook, NumClassesCheckHook,
                    RandomStateHook, SafeCheckpointHook)
from .loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

__all__ = [
    'AtomicLocalBackend', 'NonFiniteLossError', 'NonFiniteLossHook', 'NumClassesCheckHook', 'RandomStateHook',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop', 'SafeCheckpointHook'
]
