# Copyright (c) mmfishnet contributors. All rights reserved.
"""Training loops that resume exactly where the checkpoint was taken, also in the middle of an epoch.

mmengine 0.10.7's ``EpochBasedTrainLoop`` starts a resumed epoch from its first batch, so a checkpoint
taken mid-epoch (:class:`~mmfishnet.engine.LatestCheckpointHook`) would train that epoch's first batches
twice. Its ``IterBasedTrainLoop`` replays the data of the done iterations after ``before_train``, where
the random states are restored, so with ``num_workers=0`` the replay consumes them. The loops here:

- continue a resumed epoch at the batch after the checkpoint's, in the same order: the sampler's order is
  a function of its seed and epoch (mmengine's ``DefaultSampler``, ``InfiniteSampler``), and the batches
  already trained are fetched again and dropped, so that data-loading workers (restarted each epoch, as
  by default) draw the same random augmentations for the rest of the epoch as they would have;
- call the hooks' ``at_resume_position`` once the loop stands where the checkpoint was taken (after that
  replay), where :class:`~mmfishnet.engine.RandomStateHook` restores the random states.

The replay costs the data loading of the skipped batches (no forward or backward pass).
"""
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmfishnet.utils.errors import UserError


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


class _AnnounceBefore:
    """An iterator that calls ``announce()`` once, right before fetching item number ``position`` (0-based)."""

    def __init__(self, iterator, position: int, announce):
        self._iterator, self._left, self._announce = iterator, position, announce

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0:
            self._announce()
        self._left -= 1
        return next(self._iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """:class:`~mmengine.runner.IterBasedTrainLoop` whose resume restores the random states after the
    replay of the done iterations' data rather than before it.

    Arguments are those of ``IterBasedTrainLoop``; in a config
    ``train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=..., val_interval=...)``.
    """

    announces_resume_position = True

    def run(self):
        """Launch training (mmengine's loop: its replay of ``self._iter`` batches, then training)."""
        self.dataloader_iterator = _AnnounceBefore(self.dataloader_iterator, self._iter,
                                                   lambda: self.runner.call_hook('at_resume_position'))
        return super().run()
