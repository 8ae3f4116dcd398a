"""Training curves: one tiny training run with TensorBoard turned on by the documented --cfg-options, whose
event files must hold the same loss values mmengine's scalars.json holds, and whose curves
(tools/analysis_tools/plot_curves.py) must come out as PNG pictures next to the logs."""
import glob
import json
import os

import mmcv
import pytest

from helpers import run_tool, tiny_cls_config
from mmfishnet.datasets import make_toy_classification

TENSORBOARD = 'visualizer.vis_backends=[LocalVisBackend,TensorboardVisBackend]'


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('curves')
    make_toy_classification(str(tmp / 'data'), num_train=3, num_val=1, size=32)
    cfg = tiny_cls_config(tmp, tmp / 'data', epochs=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp / 'work'), '--cfg-options', TENSORBOARD,
                    'train_cfg.val_interval=1')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return tmp / 'work'


def _train_run(work):
    """The training run's folder: the first timestamp (tools/test.py runs later get their own)."""
    return sorted(glob.glob(str(work / '2*')))[0]


def test_tensorboard_opt_in_writes_the_logged_scalars(tiny_run):
    """Catches: the --cfg-options line of docs/inference_export.md not turning TensorBoard on (backend names
    not expanded into dicts: the Visualizer refuses strings), or replacing the local backend (no scalars.json, so no
    curves), and event files that do not hold the run's loss."""
    events = glob.glob(os.path.join(_train_run(tiny_run), 'vis_data', 'events.out.tfevents.*'))
    assert len(events) == 1, os.listdir(tiny_run)
    scalars = glob.glob(os.path.join(_train_run(tiny_run), 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    logged = [json.loads(line) for line in open(scalars[0])]
    local_loss = {e['step']: e['loss'] for e in logged if 'loss' in e}
    assert len(local_loss) == 4  # 2 epochs x ceil(12 images / batch 8) iterations, each one logged

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(os.path.dirname(events[0]))
    accumulator.Reload()
    board_loss = {e.step: e.value for e in accumulator.Scalars('loss')}
    assert board_loss.keys() == local_loss.keys()
    for step, value in local_loss.items():
        assert abs(board_loss[step] - value) <= 1e-6 * max(1.0, abs(value))  # float32 in the event file
    assert [e.value for e in accumulator.Scalars('accuracy/top1')] == [e['accuracy/top1'] for e in logged
                                                                        if 'accuracy/top1' in e]


def test_curves_are_drawn_from_the_logged_scalars(tiny_run):
    """Catches: no PNG for the loss or the validation metric, pictures written elsewhere than next to the
    run's logs, curves read from a test run's scalars (tools/test.py logs no training), and blank pictures."""
    proc = run_tool('tools/test.py', *_test_args(tiny_run))  # a newer run without training in the same dir
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    proc = run_tool('tools/analysis_tools/plot_curves.py', str(tiny_run))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    train_run = _train_run(tiny_run)
    for name in ('loss.png', 'accuracy_top1.png'):
        path = os.path.join(train_run, 'curves', name)
        assert path in proc.stdout
        picture = mmcv.imread(path)
        assert picture is not None and picture.std() > 0


def _test_args(work):
    config = glob.glob(str(work / '*.py'))[0]
    return config, open(work / 'last_checkpoint').read().strip(), '--work-dir', str(work)
