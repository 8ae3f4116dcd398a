# Copyright (c) mmfishnet contributors. All rights reserved.
"""Lose minutes, not epochs: a "latest" checkpoint every few minutes or iterations, and a clean stop on
SIGTERM or Slurm's warning signal, with a checkpoint and an exit code that asks for a requeue."""
import os
import signal
import time

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from mmfishnet.utils.checkpoint import atomic_write
from mmfishnet.utils.dist import launch_id
from mmfishnet.utils.errors import REQUEUE_EXIT_CODE, TrainingInterrupted  # noqa: F401  (re-exported)
from .hooks import prepare_random_states


@HOOKS.register_module()
class LatestCheckpointHook(Hook):
    """Write ``work_dir/latest.pth`` every ``minutes`` or every ``interval`` training iterations, and stop
    cleanly on a signal, so that a killed, preempted or timed-out run loses minutes rather than epochs.

    - The checkpoint is complete (model, optimizer, schedulers, message hub, the random states of every
      rank through :class:`~mmfishnet.engine.RandomStateHook`), written atomically over the previous one,
      and ``last_checkpoint`` names it until the next regular checkpoint: ``--resume`` (and the automatic
      resume of a restarted or requeued run, ``tools/train.py``) continues from it. In an epoch-based run it
      is taken in the middle of an epoch, which needs ``ResumableEpochBasedTrainLoop`` to resume
      (:mod:`mmfishnet.engine.loops`); with mmengine's ``EpochBasedTrainLoop`` none is written (a warning
      says so) and a signal stops the run without one.
    - On one of ``signals`` (by default SIGTERM, which Slurm sends at preemption and at the time limit and
      torchrun forwards, and SIGUSR1, Slurm's ``--signal`` warning), the handler only notes it. At the end of
      the training iteration in progress the ranks agree (one all-reduce of two flags every iteration,
      which also carries rank 0's clock for ``minutes``), all of them save the latest checkpoint and raise
      :class:`TrainingInterrupted`; the tools exit with code 75 ("requeue me") after SIGUSR1, 143 after
      SIGTERM. A second signal during the save changes nothing, and a kill during it leaves the previous
      checkpoint (atomic write).
    - Each checkpoint written while this hook runs records the launch it belongs to in its meta
      (``launch_id``: the Slurm job, or the torchrun launch, :func:`mmfishnet.utils.dist.launch_id`), which
      tells a restarted worker group or a requeued job the checkpoint to resume from.

    Args:
        minutes (float, optional): Save when this many minutes (rank 0's clock) have passed since the last
            save of this hook or the start of training. Default: None.
        interval (int, optional): Save every ``interval`` training iterations. Default: None.
        signals (tuple[str]): Signals that stop training after a save. Default: ('SIGTERM', 'SIGUSR1').
        filename (str): Default: 'latest.pth'.
    """

    priority = 'VERY_LOW'  # after the regular checkpoint hook (VERY_LOW too, registered first)

    def __init__(self, minutes=None, interval=None, signals=('SIGTERM', 'SIGUSR1'), filename='latest.pth'):
        assert minutes is None or minutes > 0, f'minutes must be positive, got {minutes!r}'
        assert interval is None or (isinstance(interval, int) and interval > 0), \
            f'interval must be a positive int, got {interval!r}'
        self.minutes, self.interval, self.filename = minutes, interval, filename
        self.signals = [getattr(signal, name) for name in signals]
        self._signalled = None
        self._previous = {}
        self._mid_run = True
        self._last_save = None

    def _note(self, signum, frame) -> None:
        self._signalled = signum  # only noted: the save happens at the next iteration boundary

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and not getattr(loop, 'announces_resume_position', False):
            self._mid_run = False
            runner.logger.warning(
                f"LatestCheckpointHook: {type(loop).__name__} restarts an epoch on resume, so no checkpoint is taken "
                "in the middle of an epoch; set train_cfg.type='ResumableEpochBasedTrainLoop'")
        import threading
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._note)
        self._last_save = time.monotonic()

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['meta']['launch_id'] = launch_id()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        time_due = self.minutes is not None and time.monotonic() - self._last_save >= 60 * self.minutes
        # every rank takes the same decisions: the highest signal number noted on any rank, rank 0's clock
        flags = torch.tensor([float(self._signalled or 0), float(time_due and runner.rank == 0)])
        if get_world_size() > 1:
            all_reduce(flags, op='max')
        signum, time_due = int(flags[0]), bool(flags[1] > 0)
        due = time_due or (self.interval is not None and self.every_n_train_iters(runner, self.interval))
        if self._mid_run and (due or signum):
            self.save(runner)
        if signum:
            name = signal.Signals(signum).name
            raise TrainingInterrupted(
                f'training stopped on {name} after iteration {runner.iter + 1}'
                + (f', saved in {os.path.join(runner.work_dir, self.filename)}' if self._mid_run else '')
                + ('; requeue the job (tools/slurm_train.sh does): it resumes by itself'
                   if signum == signal.SIGUSR1 else '; resume with --resume'), signum)

    def save(self, runner) -> None:
        """Save the latest checkpoint (call on every rank)."""
        prepare_random_states(runner)
        runner.save_checkpoint(runner.work_dir, self.filename, save_optimizer=True, save_param_scheduler=True,
                               meta=dict(epoch=runner.epoch, iter=runner.iter + 1), by_epoch=False,
                               backend_args=dict(backend='atomic_local'))
        if is_main_process():
            path = os.path.join(runner.work_dir, self.filename)
            atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'), lambda f: f.write(path.encode()))
        self._last_save = time.monotonic()
