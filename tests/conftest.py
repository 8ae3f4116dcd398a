"""Fixtures shared by the test modules: small generated datasets (made once per session, in tmp dirs)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mmfishnet  # noqa: E402,F401  registers FishNet

# Modules whose tests depend on real timings: Slurm's time limit and warning imitated in
# tests/slurm_imitation.py (test_faults), grace periods after a stop signal (test_signals), a benchmark that
# refuses a busy CPU (test_bench_train_speed), step timeouts of a few seconds (test_gpu_check_run). Marked
# `serial`: tools/run_tests.sh runs them alone, after the rest of the suite has run on two processes, where a
# neighbour's load would move their timings.
SERIAL_MODULES = {'test_faults.py', 'test_signals.py', 'test_bench_train_speed.py', 'test_gpu_check_run.py'}


def pytest_configure(config):
    config.addinivalue_line('markers', 'serial: depends on real timings; run alone (tests/conftest.py)')


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


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
