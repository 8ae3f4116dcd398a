# Copyright (c) mmfishnet contributors. All rights reserved.
from .hooks import (AtomicLocalBackend, NonFiniteLossHook, NumClassesCheckHook, RandomStateHook,
                    SafeCheckpointHook)

__all__ = [
    'AtomicLocalBackend', 'NonFiniteLossHook', 'NumClassesCheckHook', 'RandomStateHook', 'SafeCheckpointHook'
]
