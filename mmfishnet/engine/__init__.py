# Copyright (c) mmfishnet contributors. All rights reserved.
from .fast_path import FastPathHook
from .fault_tolerance import REQUEUE_EXIT_CODE, LatestCheckpointHook, TrainingInterrupted
from .hooks import (AtomicLocalBackend, NonFiniteLossError, NonFiniteLossHook, NumClassesCheckHook,
                    RandomStateHook, SafeCheckpointHook)
from .loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop
from .seeded_samples import ResumableInfiniteSampler, SampleKey, SeededSamples

__all__ = [
    'AtomicLocalBackend', 'FastPathHook', 'LatestCheckpointHook', 'NonFiniteLossError', 'NonFiniteLossHook',
    'NumClassesCheckHook', 'REQUEUE_EXIT_CODE', 'RandomStateHook', 'ResumableEpochBasedTrainLoop',
    'ResumableInfiniteSampler', 'ResumableIterBasedTrainLoop', 'SafeCheckpointHook', 'SampleKey', 'SeededSamples',
    'TrainingInterrupted'
]
