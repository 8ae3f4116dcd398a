# Copyright (c) mmfishnet contributors. All rights reserved.
"""How mmfishnet's command-line tools end (:func:`run_cli`): what the project's own checks refuse is one
line ``error: ...`` and exit code 2; anything unexpected keeps its traceback (exit code 1)."""
import os
import sys
from typing import Callable

from .errors import NonFiniteLossError, StoppedEarly, TrainingInterrupted, UserError, stop_exit_code


def add_runner_args(parser, work_dir_help: str):
    """The options tools/train.py and tools/test.py share (the OpenMMLab ones, plus --trust-checkpoint)."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. model.backbone.with_cp=True')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow full unpickling of checkpoints that hold more than tensors and plain '
                        'data (runs code from the file: only for files you trust)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def run_cli(main: Callable[[], object]) -> int:
    """Run a tool's ``main()`` and return its exit code; the tool ends with ``sys.exit(run_cli(main))``.

    - 0 when ``main()`` returns.
    - 2 and one line ``error: ...`` for what the project's own checks refuse (:mod:`mmfishnet.utils.errors`):
      bad input or paths (:class:`UserError`), a checkpoint that cannot be used (``CheckpointError``,
      ``ConversionError``, both kinds of ``UserError``) and a non-finite training loss (``NonFiniteLossError``).
    - 75 ("requeue me", after Slurm's SIGUSR1 warning) or 128 + the signal (SIGTERM: 143) and one line when
      training stopped on a signal after saving a checkpoint (``TrainingInterrupted``), when a signal came
      before there was anything to save (``StoppedEarly``), and when an error followed a stop signal (a
      peer that stopped first ended a collective): that error in the same line, its traceback in the log.
    - 1 for any other error (a bug, a file that disappears in the middle of a run, ...): the full traceback
      on stderr and in the run's log file, then a last line naming the error and where it was raised.

    Either way the process group of a distributed run is closed before returning, so every rank exits with
    its own code. A process that had a process group does not return: it flushes its output and logs and
    ends with ``os._exit(code)`` (:func:`_exit_after_distributed_run`). ``MMFISHNET_DEBUG=1`` re-raises
    every error instead.
    """
    from .dist import closed_a_process_group, teardown_distributed
    try:
        code, all_ranks = _run(main)
    except BaseException:  # Ctrl-C, SystemExit, or any error under MMFISHNET_DEBUG: the other ranks may be gone
        teardown_distributed(wait=False)
        raise
    teardown_distributed(wait=all_ranks)  # a no-op when main() closed it
    if closed_a_process_group():
        _exit_after_distributed_run(code)
    return code


def _run(main: Callable[[], object]):
    """``main()``'s exit code, and whether every rank stopped with the same error (see :func:`run_cli`)."""
    try:
        main()
        return 0, False
    except (UserError, NonFiniteLossError, TrainingInterrupted) as e:
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        message = f'error: {e}'
        _write_to_run_log(message)
        _say(message)
        # the ranks agreed on a non-finite loss or a stop on a signal: each says so before any exits (a
        # launcher stops the rest as soon as one rank ends)
        return getattr(e, 'exit_code', 2), isinstance(e, (NonFiniteLossError, TrainingInterrupted))
    except StoppedEarly as e:  # nothing to save; the other ranks may be anywhere: no barrier
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        _say(f'error: {e}')
        return e.exit_code, False
    except Exception as e:
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        import traceback

        from .stop_signals import noted
        text = traceback.format_exc()
        log_file = _write_to_run_log(text.rstrip())
        frame = traceback.extract_tb(e.__traceback__)[-1]
        signum = noted()
        if signum:  # the stop signal ended this run, through a peer or a library that turned it into an error
            import signal
            _say(f'error: stopped on {signal.Signals(signum).name}, ending with {type(e).__name__} at '
                 f"{frame.filename}:{frame.lineno}: {str(e)[:300]}{f' (traceback in {log_file})' if log_file else ''}")
            return stop_exit_code(signum), False
        print(text, file=sys.stderr, end='')
        _say(f'error: unexpected {type(e).__name__} at {frame.filename}:{frame.lineno} ({frame.name}): {e} '
             f"(traceback above{f' and in {log_file}' if log_file else ''})")
        return 1, False


def _exit_after_distributed_run(code: int) -> None:
    """End a process that ran a process group without finalizing the interpreter.

    torch's process-group worker threads (gloo's; NCCL's watchdog works the same way) release the tensors
    of finished collectives on their own time, which takes the GIL. When that falls in the interpreter's
    finalization (the thread saw a live interpreter, then waits for the GIL while the main thread starts
    finalizing), Python ends the thread inside a C++ destructor and the process aborts (``terminate called
    without an active exception``, exit -6 instead of the tool's code; 3 of about 120 runs of the 2-rank
    NaN-loss test here, gdb: ``~AsyncBarrierWork`` -> ``decref_pyobject`` -> ``take_gil`` ->
    ``PyThread_exit_thread``). ``destroy_process_group`` does not stop those threads
    (pytorch/pytorch#190489, open). So, with the work done and the group closed, the output and logs are
    flushed here and the process ends with ``os._exit``: no finalization, no race. (Skipped with it:
    ``atexit`` handlers; mmengine, mmcv, mmdet, mmpretrain, mmseg and mmfishnet register none, and
    logging's, which flushes and closes the log files, is run here.)
    """
    import logging
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(code)


def _say(line: str) -> None:
    """Write ``line`` to stderr in one ``write`` call. The ranks of a distributed run share their
    launcher's stderr, and torchrun starts them with ``python -u``, where ``print`` writes the text and its
    newline in two calls: two ranks' lines ended up glued on one line. One write of under 4096 bytes
    (PIPE_BUF) to a pipe is never interleaved with another."""
    sys.stderr.flush()
    data = (line + '\n').encode(sys.stderr.encoding or 'utf-8', 'replace')
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a file (pytest's capture)
        sys.stderr.write(line + '\n')
        sys.stderr.flush()
        return
    while data:
        data = data[os.write(fd, data):]


def _write_to_run_log(text: str):
    """Append ``text`` to the log file of the current run (mmengine's ``MMLogger``, if a Runner made one),
    without echoing it to the console. Returns the file's path or None."""
    import logging
    try:
        from mmengine.logging import MMLogger
    except ImportError:  # pragma: no cover
        return None
    if not MMLogger._instance_dict:
        return None
    logger = MMLogger.get_current_instance()
    path = None
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(logger.makeRecord(logger.name, logging.ERROR, __file__, 0, text, None, None))
            path = handler.baseFilename
    return path
