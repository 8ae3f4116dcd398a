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

from mmfishnet.utils import stop_signals
from mmfishnet.utils.checkpoint import atomic_write
from mmfishnet.utils.dist import launch_id
from mmfishnet.utils.errors import REQUEUE_EXIT_CODE, StoppedEarly, TrainingInterrupted  # noqa: F401  (re-exported)
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
      says so) and a signal stops the run without one, except at an epoch's end.
    - On one of ``signals`` (by default SIGTERM, which Slurm sends at preemption and at the time limit and
      torchrun forwards, and SIGUSR1, Slurm's ``--signal`` warning), the handler only notes it
      (:mod:`mmfishnet.utils.stop_signals`, installed by ``tools/train.py`` from its first line, else here).
      The ranks agree (one all-reduce of two flags, which also carries rank 0's clock for ``minutes``) at the
      end of every training iteration, of every validation iteration during training and of the validation,
      and at the end of an epoch (after its checkpoint): all of them save the latest checkpoint as of the
      last training iteration and raise :class:`TrainingInterrupted`; the tools exit with code 75 ("requeue
      me") after SIGUSR1, 143 after SIGTERM. So a signal during a validation stops it at the next validation
      iteration (the resumed run does not repeat that validation), and one during a checkpoint's save or the
      data loading of a new epoch is acted on as soon as it ends. Before the first training iteration of the
      process has ended (start-up, the first compile) there is nothing to save and a signal ends the
      process at once. A second signal during the save changes nothing, and a kill during it leaves the
      previous checkpoint (atomic write).
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
        self.signals = tuple(getattr(signal, name) for name in signals)
        self._previous = {}
        self._training = False
        self._val_checks = 0
        self._mid_run = True
        self._last_save = None

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and not getattr(loop, 'announces_resume_position', False):
            self._mid_run = False
            runner.logger.warning(
                f"LatestCheckpointHook: {type(loop).__name__} restarts an epoch on resume, so no checkpoint is taken "
                "in the middle of an epoch; set train_cfg.type='ResumableEpochBasedTrainLoop'")
        import threading
        if threading.current_thread() is threading.main_thread():
            self._previous = stop_signals.install(self.signals)
        if stop_signals.noted():  # a signal that some library's `except BaseException` swallowed during start-up
            raise StoppedEarly(stop_signals.noted())
        self._training = True
        self._last_save = time.monotonic()

    def after_train(self, runner) -> None:
        self._training = False
        stop_signals.defer(False)  # the last checkpoint is written: a signal from here on ends the process
        stop_signals.uninstall(self._previous)
        self._previous = {}

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['meta']['launch_id'] = launch_id()

    def _agree(self, runner, time_due: bool = False):
        """(the stop signal noted on any rank, the highest number, or 0; whether rank 0's clock says a save is
        due): the same answer on every rank (one all-reduce)."""
        flags = torch.tensor([float(stop_signals.noted() or 0), float(time_due and runner.rank == 0)])
        if get_world_size() > 1:
            all_reduce(flags, op='max')
        return int(flags[0]), bool(flags[1] > 0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        stop_signals.defer()  # this iteration's update is not saved yet: from here on a signal is only noted
        signum, time_due = self._agree(
            runner, self.minutes is not None and time.monotonic() - self._last_save >= 60 * self.minutes)
        due = time_due or (self.interval is not None and self.every_n_train_iters(runner, self.interval))
        if self._mid_run and (due or signum):
            self.save(runner, epoch=runner.epoch, iteration=runner.iter + 1)
        if signum:
            self._stop(runner, signum, runner.iter + 1, saved=self._mid_run)

    def after_train_epoch(self, runner) -> None:
        # after the epoch's checkpoint (the checkpoint hook runs first) and before the next epoch's data loading
        signum, _ = self._agree(runner)
        if signum:
            self.save(runner, epoch=runner.epoch + 1, iteration=runner.iter)  # the epoch and its hooks are done
            self._stop(runner, signum, runner.iter, saved=True)

    def before_val(self, runner) -> None:
        self._val_checks = 0
        if self._training:  # validation iterations every rank runs: where the ranks can agree
            count = torch.tensor(float(len(runner.val_dataloader)))
            if get_world_size() > 1:
                all_reduce(count, op='min')
            self._val_checks = int(count)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if batch_idx < self._val_checks:
            self._stop_in_validation(runner)

    def after_val(self, runner) -> None:
        if self._training:
            self._stop_in_validation(runner)

    def _stop_in_validation(self, runner) -> None:
        signum, _ = self._agree(runner)
        if signum:  # saved as of the last training iteration (RandomStateHook hands over the states before it)
            if self._mid_run:
                self.save(runner, epoch=runner.epoch, iteration=runner.iter)
            self._stop(runner, signum, runner.iter, saved=self._mid_run, where=' during validation')

    def _stop(self, runner, signum: int, iteration: int, saved: bool, where: str = '') -> None:
        name = signal.Signals(signum).name
        raise TrainingInterrupted(
            f'training stopped on {name}{where} after iteration {iteration}'
            + (f', saved in {os.path.join(runner.work_dir, self.filename)}' if saved else '')
            + ('; requeue the job (tools/slurm_sbatch.sh does): it resumes by itself'
               if signum == signal.SIGUSR1 else '; resume with --resume'), signum)

    def save(self, runner, epoch: int, iteration: int) -> None:
        """Save the latest checkpoint, at ``epoch`` (done) and ``iteration`` (done) (call on every rank)."""
        prepare_random_states(runner)
        runner.save_checkpoint(runner.work_dir, self.filename, save_optimizer=True, save_param_scheduler=True,
                               meta=dict(epoch=epoch, iter=iteration), by_epoch=False,
                               backend_args=dict(backend='atomic_local'))
        if is_main_process():
            path = os.path.join(runner.work_dir, self.filename)
            atomic_write(os.path.join(runner.work_dir, 'last_checkpoint'), lambda f: f.write(path.encode()))
        self._last_save = time.monotonic()
