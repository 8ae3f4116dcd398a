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

from mmfishnet.utils.checkpoint import atomic_write, is_remote
from mmfishnet.utils.errors import NonFiniteLossError, UserError
from .seeded_samples import SeededSamples


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
    - With ``save_best``, the previous ``best_*.pth`` is deleted only after the new best checkpoint and the
      re-saved regular checkpoint that records it are complete (mmengine deletes it first).
    - Right before each save, every rank hands its random state to :class:`RandomStateHook` (when the run
      has one), so every checkpoint this hook writes holds the random states of all ranks: the regular,
      the ``save_begin``-shifted and the last ones, and the best checkpoint with the re-save that follows it.

    All arguments are those of ``CheckpointHook``. ``backend_args`` defaults to the atomic local backend
    when ``out_dir`` is a local path.
    """

    def __init__(self, *args, backend_args=None, out_dir=None, **kwargs):
        if backend_args is None and (out_dir is None or not is_remote(out_dir)):
            backend_args = dict(backend='atomic_local')
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta):
        prepare_random_states(runner)
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

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self.save_best:
            return
        prepare_random_states(runner)  # every rank: the save of a new best is decided from the same metrics
        backend = self.file_backend
        self.file_backend = _DeferredRemoval(backend)  # mmengine removes the old best before saving the new
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            removed, self.file_backend = self.file_backend.removed, backend
        current = {getattr(self, 'best_ckpt_path', None), *getattr(self, 'best_ckpt_path_dict', {}).values()}
        for path in removed:
            if path not in current and backend.isfile(path):
                backend.remove(path)


class _DeferredRemoval:
    """A file backend whose ``remove`` only records the path (everything else goes to ``backend``)."""

    def __init__(self, backend):
        self._backend, self.removed = backend, []

    def remove(self, path) -> None:
        self.removed.append(path)

    def __getattr__(self, name):
        return getattr(self._backend, name)


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


def _own_random_state() -> dict:
    """This process's random generators: Python's, NumPy's, torch's CPU one and, where CUDA is in use,
    the current CUDA device's (only that one: asking for every device's would create a context on each)."""
    import random

    import numpy as np
    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state(), cuda=cuda)


def _byte_tensor(state) -> torch.Tensor:
    """A generator state as the CPU ByteTensor ``torch.set_rng_state`` takes: a resumed checkpoint's tensors
    were mapped to the run's device (CUDA on a GPU machine) by mmengine's ``Runner.resume``."""
    return torch.as_tensor(state).detach().to(device='cpu', dtype=torch.uint8)


def prepare_random_states(runner) -> None:
    """Called on every rank right before ``runner.save_checkpoint`` (which runs on rank 0 alone) by the hooks
    that save: gathers the ranks' random states for the :class:`RandomStateHook` of ``runner``, if any."""
    for hook in runner.hooks:
        if isinstance(hook, RandomStateHook):
            hook.prepare(runner)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random generators in each checkpoint and restore each rank's own on resume, so that
    a resumed run draws the same augmentations, dropout masks and samplings as an uninterrupted one
    (mmengine re-seeds from the config's seed on resume instead).

    What is saved, per rank: Python's, NumPy's and torch's CPU generator, and the current CUDA device's
    generator when CUDA is in use. Checkpoints are written by rank 0 alone, so the ranks' states are
    gathered (one small ``all_gather_object``) on every rank by the hook that saves, right before it saves
    (:func:`prepare_random_states`; :class:`SafeCheckpointHook` and :class:`LatestCheckpointHook` do). In a
    single-process run any checkpoint gets the process's state; in a distributed run a checkpoint written by
    another hook gets none (a warning says so) rather than rank 0's state for every rank.

    Validation does not touch the training's streams: the states are put back after each validation as they
    were before it, and a checkpoint saved during validation (the best one, and the re-save that records it)
    holds the states from before it. So the streams of an uninterrupted run do not depend on where it
    validated, and a run resumed at a validation point continues them exactly.

    On resume, each rank restores its own entry, on CPU and on CUDA alike (the tensors are brought back to
    the CPU first), at the point of the loop where the checkpoint was taken: ``before_train`` for mmengine's
    loops, which resume at an epoch boundary, and for ``ResumableIterBasedTrainLoop``, whose data loading
    leaves the main process's streams alone; after the data of the resumed epoch's done batches has been
    replayed for ``ResumableEpochBasedTrainLoop`` (``at_resume_position``). (mmengine's
    ``IterBasedTrainLoop`` replays the done iterations' data after ``before_train``, which consumes the
    restored streams when ``num_workers=0``.) A run resumed on a different number of ranks cannot continue
    the same streams: it warns and keeps the seeded ones.

    Data-loading workers: under ``ResumableIterBasedTrainLoop`` every sample's augmentation is a function of
    (seed, pass, index) (:class:`~mmfishnet.engine.SeededSamples`), exact after a resume with any workers.
    Elsewhere mmengine seeds each worker from (seed, rank, worker id) when the workers start, and torch
    derives their base seed from the main process's torch generator (restored here). Workers restarted
    every epoch (``persistent_workers=False``) therefore draw after a resume exactly what they would have
    drawn; persistent workers keep their streams across epochs in the uninterrupted run, which no
    checkpoint can capture, so after a resume their draws differ (a warning says so).

    The states are plain data and tensors and load with ``weights_only=True``. A checkpoint loaded as
    ``load_from`` (fine-tuning, testing) leaves the streams alone.
    """

    def __init__(self):
        self._prepared = None  # (iteration, [state of rank 0, rank 1, ...]) gathered for the next save
        self._before_val = None  # this rank's state when the running validation started
        self._loaded = None  # the 'random_state' of a loaded checkpoint, waiting for the resume position
        self._warned = False

    def _own(self) -> dict:
        return self._before_val if self._before_val is not None else _own_random_state()

    def prepare(self, runner) -> None:
        """Gather the random states of all ranks for the checkpoint about to be saved (call on every rank)."""
        own = self._own()
        self._prepared = (runner.iter, all_gather_object(own) if get_world_size() > 1 else [own])

    def before_val(self, runner) -> None:
        self._before_val = _own_random_state()

    def after_val(self, runner) -> None:
        state, self._before_val = self._before_val, None
        if state is not None:
            self._restore(state, runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] == runner.iter:
            states = prepared[1]
        elif get_world_size() == 1:
            states = [self._own()]
        else:  # a save no gather prepared for (another hook's): better nothing than rank 0's for all
            if not self._warned:
                self._warned = True
                runner.logger.warning('RandomStateHook: a checkpoint hook that does not gather the ranks\' random '
                                      'states saved a checkpoint without them; use SafeCheckpointHook')
            return
        checkpoint['random_state'] = dict(iter=runner.iter, world_size=len(states), ranks=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get('random_state')

    def before_train(self, runner) -> None:
        if not getattr(getattr(runner, 'train_loop', None), 'announces_resume_position', False):
            self.at_resume_position(runner)

    def at_resume_position(self, runner) -> None:
        """Restore this rank's saved state (a resumed run: ``runner.iter > 0``). Called in ``before_train``,
        or by a loop that announces the position it resumed at (``announces_resume_position``)."""
        saved, self._loaded = self._loaded, None
        if not saved or runner.iter == 0:  # nothing saved, or loaded to fine-tune rather than resumed
            return
        if 'ranks' not in saved:  # written before per-rank states (rank 0's only)
            saved = dict(world_size=1, ranks=[saved])
        if saved['world_size'] != get_world_size():
            runner.logger.warning(
                f'RandomStateHook: the checkpoint holds the random states of {saved["world_size"]} ranks, this '
                f'run has {get_world_size()}; the random streams start from the seed instead of continuing')
            return
        self._restore(saved['ranks'][get_rank()], runner)
        loader = getattr(runner, 'train_dataloader', None)
        if getattr(loader, 'persistent_workers', False) and getattr(loader, 'num_workers', 0) > 0 and \
                not isinstance(getattr(loader, 'dataset', None), SeededSamples):
            runner.logger.warning(
                'RandomStateHook: persistent data-loading workers restart their random streams on resume, so '
                'random augmentations differ from an uninterrupted run from here on; set '
                'train_dataloader.persistent_workers=False for an exact continuation')

    @staticmethod
    def _restore(state: dict, runner) -> None:
        import random

        import numpy as np
        random.setstate(state['python'])
        np.random.set_state(state['numpy'])
        torch.set_rng_state(_byte_tensor(state['torch']))
        if state.get('cuda') is not None:
            if torch.cuda.is_available():
                torch.cuda.set_rng_state(_byte_tensor(state['cuda']))
            else:
                runner.logger.warning('RandomStateHook: the checkpoint holds a CUDA generator state but this run '
                                      'has no CUDA; it is not restored')


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
