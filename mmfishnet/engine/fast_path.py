# Copyright (c) mmfishnet contributors. All rights reserved.
"""The training fast path, switched on in a config (docs/training_speed.md): ``torch.compile``, with CUDA
graphs where every step has the same shapes.

Two config keys, both optional:

- ``compile`` (mmengine's own): the Runner compiles the wrapped model's ``train_step`` (data
  preprocessor, forward, loss, backward, optimizer step) with these ``torch.compile`` arguments, e.g.
  ``compile = dict(mode='reduce-overhead')`` for CUDA graphs. For tasks whose every batch has one shape:
  classification, fixed-crop segmentation.
- ``compile_modules`` (mmfishnet's): ``dict(modules=['backbone', 'neck'], **torch.compile arguments)``
  compiles only these sub-modules of the model (``nn.Module.compile``: the state dict and hooks stay as
  they are), for detection, whose image sizes vary and whose heads sample proposals: the heads stay eager.

:class:`FastPathHook` (in every config through ``configs/_base_/default_runtime_fishnet.py``) refuses, before
anything is compiled, what does not work with it (:func:`check_fast_path`), and compiles ``compile_modules``.
"""
from typing import Optional, Sequence

import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmfishnet.utils.errors import UserError

# torch.compile modes that record CUDA graphs (torch.compile's docstring: 'reduce-overhead' and
# 'max-autotune' use CUDA graphs, 'max-autotune-no-cudagraphs' does not)
CUDAGRAPH_MODES = ('reduce-overhead', 'max-autotune')


def uses_cudagraphs(options: dict) -> bool:
    """Whether ``torch.compile(**options)`` records CUDA graphs (its mode, or inductor's
    ``triton.cudagraphs`` option when given)."""
    inductor_options = options.get('options') or {}
    if 'triton.cudagraphs' in inductor_options:
        return bool(inductor_options['triton.cudagraphs'])
    return options.get('mode') in CUDAGRAPH_MODES


def check_fast_path(model: nn.Module,
                    options: dict,
                    world_size: int = 1,
                    key: str = 'compile',
                    varying_shapes: bool = False) -> None:
    """Refuse, with a :class:`UserError` naming the fix, a compile setting that does not work for ``model``.

    Args:
        model (nn.Module): The model to be compiled (or the model holding the modules to be compiled).
        options (dict): The ``torch.compile`` arguments.
        world_size (int): Processes training together (DDP when > 1).
        key (str): The config key the options come from, for the message.
        varying_shapes (bool): Whether the compiled part sees inputs of varying shape (detection).

    The refusals, each reasoned from torch's source and issue tracker (docs/training_speed.md):

    - ``SyncBatchNorm``: dynamo graph-breaks at every ``nn.SyncBatchNorm`` (pytorch/pytorch#161302), about
      300 times in FishNet-150, which undoes the compilation.
    - ``with_cp=True``: FishNet's checkpointed units carry Python state between the forward and its
      recomputation (BN statistics are updated once), which dynamo cannot trace into one graph; and
      checkpointing spends time to save memory, the opposite of the fast path.
    - CUDA graphs with DDP (world size > 1): with BatchNorm, inductor skips CUDA graphs for the mutated BN
      buffers under DDP (pytorch/pytorch#139207) and DDP + ``reduce-overhead`` crashed in the caching
      allocator (pytorch/pytorch#128218).
    - CUDA graphs with varying shapes: every new input shape records another graph and keeps its memory.
    """
    cudagraphs = uses_cudagraphs(options)
    modules = list(model.modules())
    if any(isinstance(m, nn.SyncBatchNorm) for m in modules):
        raise UserError(f'{key}: torch.compile graph-breaks at every SyncBatchNorm (pytorch/pytorch#161302), '
                        "which undoes the compilation; use norm_cfg=dict(type='BN') for the compiled fast path, "
                        f'or drop {key}')
    checkpointed = [name or type(m).__name__ for name, m in model.named_modules()
                    if getattr(m, 'with_cp', False) is True]
    if checkpointed:
        raise UserError(f'{key}: {checkpointed[0]} has with_cp=True (gradient checkpointing trades speed for '
                        f'memory, and its recomputation cannot be compiled into one graph); set with_cp=False '
                        f'or drop {key}')
    if cudagraphs and world_size > 1:
        raise UserError(f"{key}: CUDA graphs (mode={options.get('mode')!r}) do not work with DDP and "
                        f'BatchNorm (pytorch/pytorch#139207, #128218); with {world_size} processes use '
                        "mode='max-autotune-no-cudagraphs' or the default mode")
    if cudagraphs and varying_shapes:
        raise UserError(f"{key}: CUDA graphs (mode={options.get('mode')!r}) record one graph per input shape, "
                        "and detection images vary in size; use mode='max-autotune-no-cudagraphs' or the "
                        'default mode for compile_modules')


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def _is_detector(model: nn.Module) -> bool:
    try:
        from mmdet.models.detectors import BaseDetector
    except ImportError:  # no mmdet: no detector
        return False
    return isinstance(model, BaseDetector)


def compile_modules(model: nn.Module, modules: Sequence[str], **options) -> list:
    """Compile the named sub-modules of ``model`` in place (``nn.Module.compile``, so the state dict,
    hooks and wrappers such as DDP see the same modules). Returns the modules compiled."""
    compiled = []
    for name in modules:
        module = model.get_submodule(name) if name else model
        module.compile(**options)
        compiled.append(module)
    return compiled


@HOOKS.register_module()
class FastPathHook(Hook):
    """Checks the config's ``compile`` and ``compile_modules`` (see the module docstring) before training
    and compiles ``compile_modules``. It does nothing when neither is set.

    ``compile_modules`` is a dict: ``modules`` (the sub-module names, e.g. ``['backbone', 'neck']``) and
    any ``torch.compile`` argument (``mode``, ``dynamic``, ``backend``, ``options``...).
    """

    priority = 'VERY_HIGH'  # refuse before other hooks spend time

    def before_run(self, runner) -> None:
        model = _unwrap(runner.model)
        world_size = get_world_size()
        dtype = str((runner.cfg.get('optim_wrapper') or {}).get('dtype'))
        if _is_detector(model) and dtype in ('bfloat16', 'torch.bfloat16'):
            # mmcv 2.1.0's RoIAlign dispatches float, double and half only (AT_DISPATCH_FLOATING_TYPES_AND_HALF
            # in mmcv/ops/csrc/pytorch/cuda/roi_align_cuda.cu; its CPU kernel refuses bf16 as well)
            raise UserError("optim_wrapper.dtype='bfloat16': mmcv's RoIAlign in the detector's RoI heads has no "
                            "bf16 kernel; train detectors with AmpOptimWrapper's float16 (tools/train.py --amp)")
        runner_compile = runner.cfg.get('compile')
        if runner_compile:
            options = {} if runner_compile is True else dict(runner_compile)
            check_fast_path(model, options, world_size, 'compile', varying_shapes=_is_detector(model))
        cfg = self._modules_cfg(runner)
        if cfg is not None:
            if runner_compile:
                raise UserError('set either compile (the whole train_step) or compile_modules (some modules), '
                                'not both')
            options = {k: v for k, v in cfg.items() if k != 'modules'}
            for name in cfg['modules']:
                try:
                    module = model.get_submodule(name)
                except AttributeError:
                    raise UserError(f'compile_modules: the model has no module {name!r}; its top-level modules '
                                    f'are {[n for n, _ in model.named_children()]}') from None
                check_fast_path(module, options, world_size, 'compile_modules',
                                varying_shapes=_is_detector(model))

    def before_train(self, runner) -> None:
        cfg = self._modules_cfg(runner)
        if cfg is None:
            return
        options = {k: v for k, v in cfg.items() if k != 'modules'}
        compile_modules(_unwrap(runner.model), cfg['modules'], **options)
        runner.logger.info(f"compile_modules: compiled {list(cfg['modules'])} with {options or 'the defaults'}; "
                           'the first iterations (and each new input shape) compile')

    @staticmethod
    def _modules_cfg(runner) -> Optional[dict]:
        cfg = runner.cfg.get('compile_modules')
        if not cfg:
            return None
        if not isinstance(cfg, dict) or not cfg.get('modules') or isinstance(cfg['modules'], str):
            raise UserError(f"compile_modules must be a dict with a list of module names, e.g. "
                            f"dict(modules=['backbone', 'neck']), got {cfg!r}")
        return dict(cfg)


__all__ = ['FastPathHook', 'check_fast_path', 'compile_modules', 'uses_cudagraphs', 'CUDAGRAPH_MODES']
