# Copyright (c) mmfishnet contributors. All rights reserved.
"""The one way mmfishnet's command-line tools report a user error: a short message and exit code 2,
no traceback (``MMFISHNET_DEBUG=1`` shows it)."""
import os
import sys
from typing import Callable


class UserError(ValueError):
    """An error the user can fix from the message alone (bad path, bad argument, wrong file)."""


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
