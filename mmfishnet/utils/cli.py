# Copyright (c) mmfishnet contributors. All rights reserved.
"""How mmfishnet's command-line tools end (:func:`run_cli`): what the project's own checks refuse is one
line ``error: ...`` and exit code 2; anything unexpected keeps its traceback (exit code 1)."""
import os
import sys
from typing import Callable


class UserError(ValueError):
    """An error the user can fix from the message alone (bad path, bad argument, wrong file)."""


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
    - 2 and one line ``error: ...`` for what the project's own checks refuse: bad input or paths
      (:class:`UserError`), a checkpoint that cannot be used (``CheckpointError``, ``ConversionError``) and a
      non-finite training loss (``NonFiniteLossError``).
    - 1 for any other error (a bug, a file that disappears in the middle of a run, ...): the full traceback
      on stderr and in the run's log file, then a last line naming the error and where it was raised.

    Either way the process group of a distributed run is closed before returning, so every rank exits with
    its own code. ``MMFISHNET_DEBUG=1`` re-raises every error instead.
    """
    from mmfishnet.converters import ConversionError
    from mmfishnet.engine.hooks import NonFiniteLossError
    from mmfishnet.utils.checkpoint import CheckpointError
    from mmfishnet.utils.dist import teardown_distributed
    all_ranks = False  # whether every rank raised the error together
    try:
        main()
        return 0
    except (UserError, ConversionError, CheckpointError, NonFiniteLossError) as e:
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        message = f'error: {e}'
        _write_to_run_log(message)
        print(message, file=sys.stderr, flush=True)
        # the ranks agreed on a non-finite loss: each says so before any exits (a launcher stops the rest
        # as soon as one rank ends)
        all_ranks = isinstance(e, NonFiniteLossError)
        return 2
    except Exception as e:
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        import traceback
        text = traceback.format_exc()
        log_file = _write_to_run_log(text.rstrip())
        frame = traceback.extract_tb(e.__traceback__)[-1]
        print(text, file=sys.stderr, end='')
        print(f'error: unexpected {type(e).__name__} at {frame.filename}:{frame.lineno} ({frame.name}): {e} '
              f"(traceback above{f' and in {log_file}' if log_file else ''})", file=sys.stderr)
        return 1
    finally:
        teardown_distributed(wait=all_ranks)  # a no-op when main() closed it


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
