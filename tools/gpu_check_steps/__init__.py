# Copyright (c) mmfishnet contributors. All rights reserved.
"""The steps of the GPU acceptance run (tools/gpu_check.py), one file per stage: :mod:`.base` (the run's
state and helpers), :mod:`.stage_a` (no compiled mmcv op needed), :mod:`.stage_b` (mmcv's CUDA ops),
:mod:`.perf` (the benchmarks)."""
