# Copyright (c) mmfishnet contributors. All rights reserved.
from .hooks import (AtomicLocalBackend, NonFiniteLossError, NonFiniteLossHook, NumClassesCheckHook,
                    RandomStateHook, SafeCheckpointHook)

__all__ = [
    'AtomicLocalBackend', 'NonFiniteLossError', 'NonFiniteLossHook', 'NumClassesCheckHook', 'RandomStateHook',
    'SafeCheckpointHook'
]
