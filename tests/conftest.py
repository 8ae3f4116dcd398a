"""Fixtures shared by the test modules: small generated datasets (made once per session, in tmp dirs)."""
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


@pytest.fixture(scope='session')
def cls_data(tmp_path_factory):
    """Toy classification data: 4 classes x (12 train + 2 val) images of 32x32, so the tiny configs of
    tests/helpers.py (batch 8) run 6 iterations an epoch."""
    from mmfishnet.datasets import make_toy_classification
    root = tmp_path_factory.mktemp('toy_cls')
    make_toy_classification(str(root), num_train=12, num_val=2, size=32)
    return root


@pytest.fixture(scope='session')
def coco_data(tmp_path_factory):
    """Toy COCO-format detection data: 8 train and 4 val images of 96x128, 3 classes."""
    from mmfishnet.datasets import make_toy_coco
    root = tmp_path_factory.mktemp('toy_coco')
    make_toy_coco(str(root), num_train=8, num_val=4, size=(96, 128))
    return root
