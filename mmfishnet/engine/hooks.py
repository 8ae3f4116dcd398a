# Copyright (c) mmfishnet contributors. All rights reserved.
"""Hooks that keep long training runs safe: a non-finite loss stops training at once, and checkpoints are
written so that a kill at any moment leaves the last complete checkpoint loadable."""
import math
from collections import deque

import torch
from mmengine.dist import all_gather_object, all_reduce, get_rank, get_world_size, is_main_process
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


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (raised on every rank by :class:`NonFiniteLossHook`)."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when the loss becomes NaN or infinite, naming the iteration, before a checkpoint of
    the broken weights can be saved (runs ahead of the checkpoint hook).

    In a distributed run the ranks agree first (one all-reduce of a flag per check): when the loss of any
    rank is not finite, every rank raises :class:`NonFiniteLossError` with the same message, naming the
    ranks and their non-finite terms. No rank goes on into the next collective to wait there for peers
    that have stopped, and every rank exits with the same error code (``tools/train.py``: 2).

    Only the loss is checked. Under AMP (``AmpOptimWrapper`` with a dynamic loss scale) an overflow of the
    *scaled* gradients is normal, the optimizer step is skipped and the scale lowered, and training goes on.

    Args:
        interval (int): Check every ``interval`` iterations. Default: 1 (the check reads one scalar the
            logger reads anyway, plus one scalar all-reduce in a distributed run).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'NonFiniteLossHook interval must be a positive int, got {interval!r}')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        loss = (outputs or {}).get('loss')
        mine = None
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss).all()):
            terms = {k: float(v) for k, v in outputs.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
            mine = dict(rank=get_rank(), loss=float(loss),
                        terms={k: v for k, v in terms.items() if not math.isfinite(v)})
        reports = [mine] if mine else []
        world_size = get_world_size()
        if world_size > 1:  # every rank takes part, whatever its own loss
            flag = torch.tensor(0. if mine is None else 1.)
            all_reduce(flag, op='max')
            if flag.item() > 0:
                reports = [r for r in all_gather_object(mine) if r]
        if reports:
            raise NonFiniteLossError(self._message(runner, batch_idx, reports, world_size))

    @staticmethod
    def _message(runner, batch_idx: int, reports: list, world_size: int) -> str:
        where = ''
        terms = ', '.join(f'{k}={v}' for k, v in reports[0]['terms'].items())
        if world_size > 1:
            ranks = [r['rank'] for r in reports]
            where = f" on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))} of {world_size}"
            terms = '; '.join(f"rank {r['rank']}: " + ', '.join(f'{k}={v}' for k, v in r['terms'].items())
                              for r in reports)
        return (f"the loss became {reports[0]['loss']} at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, "
                f'batch {batch_idx + 1}){where}; training stopped before saving it. Non-finite terms: {terms}. '
                f'Lower the learning rate or set optim_wrapper.clip_grad, check the data, and restart from the '
                f'last checkpoint with --resume')


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
