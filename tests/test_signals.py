"""Stop signals as a cluster sends them (issue 23): to whole process groups, data-loading workers included
(Slurm signals every process of a step, torchrun each worker's process group); during start-up; during a
validation that outlasts the grace period; and a kill while the latest checkpoint is being written. One
process each, the tiny classifier of tests/helpers.py (6 iterations an epoch)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, cpu_tool_env, tiny_cls_config
from mmfishnet.utils.checkpoint import allow_runner_checkpoint_types, is_complete_checkpoint

PLUGINS = os.path.join(ROOT, 'tests', 'plugins')


def start(cfg, work, *args):
    """tools/train.py in a session of its own (its process group: the process and its workers), its output
    collected by a thread."""
    import threading
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'tools/train.py'), cfg, '--work-dir', str(work),
                             *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True,
                            env=cpu_tool_env(PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', '')))
    proc.lines = []
    proc.reader = threading.Thread(target=lambda: proc.lines.extend(proc.stdout), daemon=True)
    proc.reader.start()
    return proc


def output(proc):
    return ''.join(proc.lines)


def wait_for(proc, pattern, timeout=600):
    deadline = time.time() + timeout
    while not re.search(pattern, output(proc)):
        assert proc.poll() is None, f'ended before {pattern!r}:\n' + output(proc)[-3000:]
        assert time.time() < deadline, f'no {pattern!r} within {timeout} s'
        time.sleep(0.1)


def finish(proc, timeout=600):
    proc.wait(timeout=timeout)
    proc.reader.join(timeout=60)
    return proc.returncode, output(proc)


def saved_iteration(path):
    allow_runner_checkpoint_types()
    assert is_complete_checkpoint(str(path)), path
    return torch.load(path, map_location='cpu', weights_only=True)['meta']['iter']


WORKERS = """
custom_imports = dict(imports=['mmfishnet'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='LatestCheckpointHook', interval=100)]
train_dataloader = dict(batch_size=8, num_workers=2, persistent_workers={persistent}, dataset=dict(data_root={root!r}))
{loop}
"""
ITER_LOOP = """
train_cfg = dict(_delete_=True, type='ResumableIterBasedTrainLoop', max_iters=12, val_interval=100)
train_dataloader['sampler'] = dict(type='ResumableInfiniteSampler', shuffle=True)  # what the loop needs
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=12)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=100))
"""


@pytest.mark.parametrize('loop,signum,at', [
    ('ResumableEpochBasedTrainLoop', signal.SIGTERM, r'Epoch\(train\) \[1\]\[2/6\]'),
    ('ResumableIterBasedTrainLoop', signal.SIGUSR1, r'Epoch\(train\) \[1\]\[2/6\]')])  # the toy's log format
def test_signal_to_the_process_group_with_workers_saves(tmp_path, cls_data, loop, signum, at):
    """Bugs (issue 23, item 3): the data-loading workers died of a stop signal sent to the whole process group
    (as Slurm and torchrun send it): torch's workers end on SIGTERM, and mmengine's IterBasedTrainLoop starts
    its workers before the hooks install any handler, so they kept the default action of SIGUSR1 too; the run
    ended with 'DataLoader worker ... is killed by signal', exit 1, nothing saved. With num_workers=2, the
    signal sent to the group mid-run must end it with its exit code (143 / 75) after saving latest.pth at
    the iteration the message names."""
    extra = WORKERS.format(persistent=loop.startswith('ResumableIter'), root=str(cls_data),
                           loop=ITER_LOOP if 'Iter' in loop else '')  # the toy config's loop: ResumableEpochBasedTrainLoop
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=2, extra=extra)
    proc = start(cfg, tmp_path / 'work')
    wait_for(proc, at)
    os.killpg(proc.pid, signum)
    code, out = finish(proc)
    assert code == (75 if signum == signal.SIGUSR1 else 143), out[-3000:]
    assert 'is killed by signal' not in out, out[-3000:]
    stopped = re.findall(rf'error: training stopped on {signal.Signals(signum).name} after iteration (\d+), saved '
                         r'in (\S+);', out)
    assert stopped and stopped[0][1] == str(tmp_path / 'work' / 'latest.pth'), out[-3000:]
    assert saved_iteration(stopped[0][1]) == int(stopped[0][0]) >= 2


def test_signal_during_start_up_exits_cleanly(tmp_path, cls_data):
    """Bug (issue 23, item 4): the handlers were installed in before_train, so Slurm's warning during start-up
    (imports, building; Slurm may send it up to a minute early) killed the task: exit 138, not requeued.
    SIGUSR1 as soon as the process handles it, during its imports: exit 75, one line, no traceback."""
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=1)
    proc = start(cfg, tmp_path / 'work')
    deadline = time.time() + 10  # tools/train.py handles it from its first lines; today's code never did here
    while time.time() < deadline:
        with open(f'/proc/{proc.pid}/status') as f:
            caught = int(re.search(r'SigCgt:\s*([0-9a-f]+)', f.read()).group(1), 16)
        if caught >> (signal.SIGUSR1 - 1) & 1:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGUSR1)
    code, out = finish(proc, timeout=120)
    assert code == 75, out[-3000:]
    assert 'Traceback' not in out and out.strip().splitlines()[-1].startswith(
        'error: stopped on SIGUSR1 before the first training iteration ended, with nothing to save'), out[-3000:]
    assert not (tmp_path / 'work' / 'latest.pth').exists()


def test_signal_during_a_long_validation_saves_within_the_grace_period(tmp_path, cls_data):
    """Bug (issue 23, item 7): a signal during validation was acted on only after the next training iteration;
    a validation longer than the grace period (torchrun's shutdown timeout and Slurm's KillWait, 30 s each)
    ended in SIGKILL and no latest.pth. Here the validation lasts 8 x 4 s; SIGTERM at its first iteration:
    the run stops at the next validation iteration, saves the training state as of the last training
    iteration (6, the end of epoch 1) and exits 143, well before the validation would have ended."""
    extra = f"""
custom_imports = dict(imports=['mmfishnet', 'slow_validation'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='LatestCheckpointHook', interval=100),
                dict(type='SlowValidation', seconds=4)]
val_dataloader = dict(batch_size=1, dataset=dict(data_root={str(cls_data)!r}))
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2, val_interval=1)
"""
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=2, extra=extra)
    proc = start(cfg, tmp_path / 'work')
    wait_for(proc, r'Epoch\(val\) \[1\]\[1/8\]')
    signalled = time.time()
    os.killpg(proc.pid, signal.SIGTERM)
    code, out = finish(proc)
    took = time.time() - signalled
    assert code == 143, out[-3000:]
    assert 'training stopped on SIGTERM during validation after iteration 6' in out, out[-3000:]
    assert saved_iteration(tmp_path / 'work' / 'latest.pth') == 6
    assert took < 20, f'{took:.0f} s after the signal; the rest of the validation takes 28 s'  # not acted on later


def test_a_kill_while_writing_latest_leaves_the_previous_one(tmp_path, cls_data):
    """Guarantee without a test until issue 23: "latest.pth is written atomically". SIGKILL while the latest
    checkpoint of iteration 4 is being written (its first bytes are out): the one of iteration 2 is still
    there, complete, and loads (a plain in-place write would have left a truncated latest.pth)."""
    extra = """
custom_imports = dict(imports=['mmfishnet', 'save_killer'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='LatestCheckpointHook', interval=2),
                dict(type='KillWhileWriting', iteration=4)]
"""
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=1, extra=extra)
    proc = start(cfg, tmp_path / 'work')
    code, out = finish(proc)
    assert code == -signal.SIGKILL, out[-3000:]
    assert saved_iteration(tmp_path / 'work' / 'latest.pth') == 2
