import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mmfishnet  # noqa: E402,F401  registers FishNet


@pytest.fixture(scope='session')
def repo_root():
    return ROOT
