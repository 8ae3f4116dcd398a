# Copyright (c) mmfishnet contributors. All rights reserved.
"""Hooks that keep long training runs safe: a non-finite loss stops training at once, and checkpoints are
written so that a kill at any moment leaves the last complete checkpoint loadable."""
from collections import deque

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from mmfishnet.utils.checkpoint import atomic_write
from mmfishnet.utils.cli import UserError


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """Local files written through a temporary file and an atomic rename."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), lambda f: f.write(obj))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), lambda f: f.write(obj.encode(encoding)))


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` that never leaves a partial checkpoint behind.

    - Every checkpoint file is written to a temporary file and renamed into place (``atomic_local``
      file backend), so a kill during saving leaves the previous files intact.
    - With ``max_keep_ckpts``, the outdated checkpoint is deleted only after the new one is complete
      (mmengine deletes it first, so a kill while saving could leave no checkpoint at all).

    All arguments are those of ``CheckpointHook``. ``backend_args`` defaults to the atomic local backend
    when ``out_dir`` is a local path.
    """

    def __init__(self, *args, backend_args=None, out_dir=None, **kwargs):
        if backend_args is None and (out_dir is None or '://' not in str(out_dir)):
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
        keep = self.max_keep_ckpts
        if keep <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return super()._save_checkpoint_with_step(runner, step, meta)
        ids = list(self.keep_ckpt_ids) + [step]
        outdated, kept = ids[:-keep], ids[-keep:]
        # what the new checkpoint records as kept is what will be on disk once it is complete
        runner.message_hub.update_info('keep_ckpt_ids', kept)
        self.max_keep_ckpts = -1  # the base class would delete the outdated file before saving
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        self.keep_ckpt_ids = deque(kept, maxlen=keep)
        if is_main_process():
            for old in outdated:
                path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
                if self.file_backend.isfile(path):
                    self.file_backend.remove(path)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when the loss becomes NaN or infinite, naming the iteration, before a checkpoint of
    the broken weights can be saved (runs ahead of the checkpoint hook).

    Args:
        interval (int): Check every ``interval`` iterations. Default: 1 (the loss is already synchronised
            for logging every iteration, so this costs nothing extra).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'NonFiniteLossHook interval must be a positive int, got {interval!r}')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not outputs or 'loss' not in outputs or not self.every_n_train_iters(runner, self.interval):
            return
        loss = outputs['loss']
        if isinstance(loss, torch.Tensor) and not torch.isfinite(loss).all():
            parts = {k: float(v) for k, v in outputs.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
            bad = ', '.join(f'{k}={v}' for k, v in parts.items() if not torch.isfinite(torch.tensor(v)))
            raise FloatingPointError(
                f'the loss became {float(loss)} at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                f'batch {batch_idx + 1}); training stopped before saving it. Non-finite terms: {bad}. Lower '
                f'the learning rate or set optim_wrapper.clip_grad, check the data, and restart from the last '
                f'checkpoint with --resume')


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the Python, NumPy and torch random states in every checkpoint and restore them on resume, so
    that a resumed run draws the same augmentations as an uninterrupted one (mmengine re-seeds from the
    config's seed on resume instead). The states are plain data and load with ``weights_only=True``."""

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        import random

        import numpy as np
        checkpoint['random_state'] = dict(
            python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        import random

        import numpy as np
        state = checkpoint.get('random_state')
        if not state or not runner._resume:  # only a resumed run continues the stream
            return
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(state['torch'])


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Before training (and testing), check that every classification layer of the model predicts as
    many classes as the dataset has, and fail with the setting to change if not. RPN heads (one
    objectness class) are skipped."""

    def _check(self, runner, loader, split: str) -> None:
        dataset = getattr(loader, 'dataset', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if not classes:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        for name, module in model.named_modules():
            num = getattr(module, 'num_classes', None)
            if not isinstance(num, int) or type(module).__name__ in ('RPNHead', 'StageCascadeRPNHead') or \
                    module is model:
                continue
            if num != len(classes):
                shown = ', '.join(map(str, classes[:8])) + (', ...' if len(classes) > 8 else '')
                raise UserError(f'model.{name}.num_classes={num} but the {split} dataset has {len(classes)} '
                                 f'classes ({shown}); set model.{name}.num_classes={len(classes)}')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_dataloader, 'train')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_dataloader, 'test')
