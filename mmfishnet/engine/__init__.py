# Copyright (c) mmfishnet contributors. All rights reserved.
from .fast_path import FastPathHook
from .hooks import (AtomicLocalBackend, NonFiniteLossError, NonFiniteLossHook, NumClassesCheckHook,
                    RandomStateHook, SafeCheckpointHook)

__all__ = [
    'AtomicLocalBackend', 'FastPathHook', 'NonFiniteLossError', 'NonFiniteLossHook', 'NumClassesCheckHook',
    'RandomStateHook', 'SafeCheckpointHook'
]
