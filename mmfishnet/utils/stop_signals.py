# Copyright (c) mmfishnet contributors. All rights reserved.
"""The stop signals of a training process, SIGTERM and Slurm's SIGUSR1 warning, from the first line of
``tools/train.py`` to its end (docs/fault_tolerance.md).

A leaf of the import graph (the standard library and :mod:`mmfishnet.utils.errors` only): ``tools/train.py``
loads both before anything heavy (``import mmfishnet`` imports torch and the OpenMMLab libraries, seconds
during which a signal found no handler and killed the task), and calls :func:`install`.

- Until this process has something to lose, a stop signal ends it at once: the handler raises
  :class:`~mmfishnet.utils.errors.StoppedEarly` (exit 75 after SIGUSR1, 143 after SIGTERM, one line). That
  covers start-up, building, loading a checkpoint, and the first training iteration with its compile.
- From the end of the first training iteration (:func:`defer`, called by
  :class:`~mmfishnet.engine.LatestCheckpointHook`), a signal is only noted (:func:`noted`): the ranks agree on
  it at the next iteration boundary (or validation iteration) and save.
- Every process forked from this one (the data-loading workers) blocks the stop signals from its first
  instruction: Slurm signals every process of a step and torchrun each worker's process group, workers
  included, and the main process decides. Blocked rather than ignored: torch's worker installs its own
  SIGTERM handler when it starts, which ends the worker ("DataLoader worker ... is killed by signal"). A
  thread of the child takes the blocked signals and ends it on a SIGTERM from its parent only (the parent's
  ``terminate()``, which the DataLoader's shutdown and multiprocessing's exit handler rely on).
  Workers started with the ``spawn`` or ``forkserver`` method are not forked from here and keep the defaults
  (mmengine's default, and the configs', is ``fork``).
"""
import os
import signal

from mmfishnet.utils.errors import StoppedEarly

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_state = dict(pid=None, noted=None, deferred=False, signals=(), fork_hook=False)


def _handler(signum, frame) -> None:
    if os.getpid() != _state['pid']:  # a forked child, between its fork and the blocking of the signals
        return
    _state['noted'] = max(signum, _state['noted'] or 0)
    if not _state['deferred']:
        raise StoppedEarly(signum)


def _block_in_child() -> None:
    if not _state['signals']:
        return
    import threading
    signal.pthread_sigmask(signal.SIG_BLOCK, _state['signals'])
    threading.Thread(target=_end_on_the_parents_sigterm, args=(os.getppid(), _state['signals']), daemon=True,
                     name='stop-signals').start()


def _end_on_the_parents_sigterm(parent: int, signals) -> None:
    """In a forked child: take its blocked stop signals, and end it on a SIGTERM from its parent alone, which is
    how the parent ends a worker that does not stop by itself (``Process.terminate``: torch's DataLoader
    shutdown, multiprocessing's exit handler, which then waits for it), as torch's worker handler does."""
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_signo == signal.SIGTERM and info.si_pid == parent:
            os._exit(0)


def install(signals=STOP_SIGNALS) -> dict:
    """Handle ``signals`` in this process (call from the main thread) and block them in the processes it
    forks from now on. Returns the handlers it replaced ({signal: handler}; empty for those already handled
    here), which :func:`uninstall` puts back."""
    _state['pid'] = os.getpid()
    if not _state['fork_hook']:
        os.register_at_fork(after_in_child=_block_in_child)
        _state['fork_hook'] = True
    previous = {}
    for signum in signals:
        if signal.getsignal(signum) is not _handler:
            previous[signum] = signal.signal(signum, _handler)
    _state['signals'] = tuple(sorted(set(_state['signals']) | set(signals)))
    return previous


def uninstall(previous: dict) -> None:
    """Put back the handlers :func:`install` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    _state['signals'] = tuple(s for s in _state['signals'] if s not in previous)


def release() -> None:
    """Give the stop signals back their default action (they end the process), and stop blocking them in
    forked processes: for a run without :class:`~mmfishnet.engine.LatestCheckpointHook`, where nothing saves on
    a signal and exit code 75 would have the job requeued to start afresh."""
    for signum in _state['signals']:
        signal.signal(signum, signal.SIG_DFL)
    _state['signals'] = ()


def defer(deferred: bool = True) -> None:
    """From now on only note a stop signal (this process has work to save), or with False end at once."""
    _state['deferred'] = deferred


def noted():
    """The stop signal this process received (the highest number if several), or None."""
    return _state['noted']


def exit_code(run) -> int:
    """``run()``'s result (a tool's exit code), or, when a stop signal ended it before the tool's own error
    handling was imported (``mmfishnet.utils.cli.run_cli``), the signal's exit code after one line."""
    try:
        return run()
    except StoppedEarly as e:
        import sys
        sys.stderr.write(f'error: {e}\n')
        return e.exit_code
