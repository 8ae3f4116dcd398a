# Copyright (c) mmfishnet contributors. All rights reserved.
"""Training loops that resume exactly where the checkpoint was taken, also in the middle of an epoch.

mmengine 0.10.7's ``EpochBasedTrainLoop`` starts a resumed epoch from its first batch, so a checkpoint
taken mid-epoch (:class:`~mmfishnet.engine.LatestCheckpointHook`) would train that epoch's first batches
twice. Its ``IterBasedTrainLoop`` loads and drops the data of every done iteration after ``before_train``
(half an hour late in an ADE20K run), where the random states are restored, so with ``num_workers=0`` that
replay consumes them. The loops here:

- ``ResumableEpochBasedTrainLoop`` continues a resumed epoch at the batch after the checkpoint's, in the
  same order: the sampler's order is a function of its seed and epoch (mmengine's ``DefaultSampler``), and
  the batches already trained in that epoch are fetched again and dropped, so that data-loading workers
  (restarted each epoch, as by default) draw the same random augmentations for the rest of the epoch as
  they would have; it calls the hooks' ``at_resume_position`` once the loop stands where the checkpoint
  was taken (after that replay), where :class:`~mmfishnet.engine.RandomStateHook` restores the random
  states. The replay costs the data loading of the epoch's skipped batches (no forward or backward pass).
- ``ResumableIterBasedTrainLoop`` starts its sampler at the next sample and loads nothing of the done
  iterations: each sample's augmentation is a function of (seed, pass, index)
  (:mod:`mmfishnet.engine.seeded_samples`), so the resume costs the same at any iteration and is exact
  with any data-loading workers.
"""
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmfishnet.utils.errors import UserError
from .seeded_samples import ResumableInfiniteSampler, SeededSamples


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """:class:`~mmengine.runner.EpochBasedTrainLoop` that resumes in the middle of an epoch.

    Arguments are those of ``EpochBasedTrainLoop``. Set it in a config with
    ``train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=..., val_interval=...)``
    (mmpretrain's bases write ``by_epoch=True`` instead of a type: add ``_delete_=True``).
    """

    announces_resume_position = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._announced = False

    def _announce(self) -> None:
        if not self._announced:
            self._announced = True
            self.runner.call_hook('at_resume_position')

    def run_epoch(self) -> None:
        """Iterate one epoch; after a resume in the middle of it, only its batches not yet trained."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        num_batches = len(self.dataloader)
        done = self._iter - self._epoch * num_batches  # batches of this epoch trained before a resume
        if not 0 <= done <= num_batches:
            raise UserError(f'the resumed checkpoint is at iteration {self._iter}, epoch {self._epoch}, which is '
                            f'not in epoch {self._epoch + 1} with {num_batches} iterations an epoch: resume with '
                            f'the batch size and number of processes it was written with')
        if done in (0, num_batches):  # at the epoch's start (or end): before its data iterator draws
            self._announce()
        if done < num_batches:
            batches = iter(self.dataloader)
            for _ in range(done):
                next(batches)
            self._announce()
            for idx, data_batch in enumerate(batches, start=done):
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


class _SkipFirst:
    """An iterator whose first ``count`` items are None, fetched from nowhere; then ``iterator``'s items."""

    def __init__(self, iterator, count: int):
        self._iterator, self._left = iterator, count

    def __iter__(self):
        return self

    def __next__(self):
        if self._left > 0:
            self._left -= 1
            return None
        return next(self._iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """:class:`~mmengine.runner.IterBasedTrainLoop` whose resume starts the sampler at the next sample,
    without loading the data of the done iterations (mmengine's loop loads and drops all of them), and
    continues every random augmentation exactly, with data-loading workers, persistent ones included.

    The training data must come from :class:`~mmfishnet.engine.ResumableInfiniteSampler`, and the loop wraps
    the dataset in :class:`~mmfishnet.engine.SeededSamples`: each sample's augmentation is then a function
    of (seed, pass over the data, index), so a resumed run draws what the uninterrupted run drew. In a config::

        train_dataloader = dict(sampler=dict(type='ResumableInfiniteSampler', shuffle=True))
        train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=..., val_interval=...)

    Other arguments are those of ``IterBasedTrainLoop``. The sampler yields nothing until :meth:`run` sets
    its start (the resumed iteration, known only once the checkpoint is loaded), so the data-loading workers
    that mmengine's loop starts when it is built load nothing before.
    """

    def __init__(self, runner, dataloader, *args, **kwargs):
        if isinstance(dataloader, dict):
            dataloader = _seeded_loader_cfg(dataloader)
        super().__init__(runner, dataloader, *args, **kwargs)
        if not isinstance(self.dataloader.dataset, SeededSamples):
            raise UserError('ResumableIterBasedTrainLoop builds its data loader itself: give it the '
                            'train_dataloader config, not a built DataLoader')

    def run(self):
        """Launch training at ``self._iter`` (mmengine's loop, whose replay of the done iterations gets
        placeholders instead of batches)."""
        loader, start = self.dataloader, self._iter * self.dataloader.batch_size
        loader.batch_sampler.sampler.set_start(start)
        if self._iter > 0:
            print_log(f'resumed at iteration {self._iter}: the sampler starts at sample {start} of this rank, and '
                      f'no data of the done iterations is loaded (the "advance" below is free)', logger='current')
        # a new iterator before before_train, as in an uninterrupted run: it draws its base seed from the
        # main process's torch generator, whose state RandomStateHook restores in before_train
        self.dataloader_iterator = _SkipFirst(iter(loader), self._iter)
        return super().run()


def _seeded_loader_cfg(cfg: dict) -> dict:
    """``train_dataloader``'s config with the dataset in :class:`SeededSamples` and the sampler held until
    :meth:`ResumableIterBasedTrainLoop.run` sets its start; a clear error for a sampler that cannot start
    at a position."""
    sampler = dict(cfg.get('sampler') or {})
    if sampler.get('type') not in ('ResumableInfiniteSampler', ResumableInfiniteSampler):
        raise UserError(f"ResumableIterBasedTrainLoop needs train_dataloader.sampler=dict(type="
                        f"'ResumableInfiniteSampler', shuffle=True), not {sampler.get('type')!r}: it starts a "
                        f"resumed run at the next sample without loading the done iterations' data")
    if cfg.get('batch_sampler'):
        raise UserError('ResumableIterBasedTrainLoop takes batches of train_dataloader.batch_size consecutive '
                        'samples: remove train_dataloader.batch_sampler')
    cfg = dict(cfg)
    cfg['sampler'] = dict(sampler, start=None)
    cfg['dataset'] = dict(type='SeededSamples', dataset=cfg['dataset'])
    return cfg
