# Copyright (c) mmfishnet contributors. All rights reserved.
"""The one way mmfishnet's command-line tools report a user error: a short message and exit code 2,
no traceback (``MMFISHNET_DEBUG=1`` shows it)."""
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


def run_cli(main: Callable[[], object]) -> None:
    from mmfishnet.converters import ConversionError
    from mmfishnet.utils.checkpoint import CheckpointError
    try:
        main()
    except (UserError, ConversionError, CheckpointError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, PermissionError, FloatingPointError) as e:
        if os.environ.get('MMFISHNET_DEBUG'):
            raise
        message = str(e) if not isinstance(e, OSError) or not e.filename else f'{e.strerror}: {e.filename}'
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
