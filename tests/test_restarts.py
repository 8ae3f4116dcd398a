"""Restarts under MAX_RESTARTS (issue 23, points 5 and 6): a restarted group meets in a fresh store, and a
one-machine launch with a fixed PORT has a launch id, so its restarted group resumes instead of training
again from iteration 0."""
import os
import re
import signal
import subprocess
import sys
import warnings

import pytest

from helpers import ROOT, cpu_tool_env, fake_command, run_tool, tiny_cls_config, toy_cls_data
from test_faults import (EXTRA, INTERVAL, KILL_AT, Job, assert_same_weights, dist_train, free_port, resumed_iteration,
                         wait_for, worker_pids)


def test_restarted_group_reads_no_stale_store_keys():
    """Bug: torchrun's workers shared its agent's store, which outlives a restart, so a restarted group
    read the dead attempt's keys: gloo's peer addresses, and any key published under the same name each
    attempt, as NCCL's unique id is. A plain 2-process gloo script (tests/plugins/restarted_group.py)
    through tools/dist_run.sh with MAX_RESTARTS=1: rank 1 dies once the group is up, and in the restart
    rank 0 comes 3 s late. Both ranks of attempt 1 must come up and read attempt 1's key (with the shared
    store, seen hanging: no line of attempt 1 within 2 minutes)."""
    proc = subprocess.Popen(['bash', os.path.join(ROOT, 'tools/dist_run.sh'), '../tests/plugins/restarted_group.py',
                             '2'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cpu_tool_env(MAX_RESTARTS='1', PORT=None, NNODES=None, SLURM_JOB_ID=None),
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail('the restarted group did not come up within 150 s:\n' + out[-3000:])
    assert proc.returncode == 0, out[-3000:]
    for rank in (0, 1):
        assert f'attempt 1 rank {rank} read 1' in out, out[-3000:]


@pytest.fixture(scope='module')
def cfg(tmp_path_factory):
    data = toy_cls_data(tmp_path_factory, 'toy_cls_restarts', num_train=12, num_val=2)
    return tiny_cls_config(tmp_path_factory.mktemp('restarts_cfg'), data, epochs=2,
                           extra=EXTRA.format(interval=INTERVAL, data_root=str(data)))


def test_fixed_port_and_max_restarts_resume(tmp_path, cfg):
    """Bug: PORT with MAX_RESTARTS on one machine took torchrun's static rendezvous, whose id is "none", so
    the launch had no id, and the restarted group trained again from iteration 0 and overwrote the
    checkpoints. PORT=<free port> MAX_RESTARTS=1, rank 1 SIGKILLed mid-epoch 2: the group resumes from
    this launch's latest checkpoint and ends with the uninterrupted run's weights."""
    port = free_port()
    reference = tmp_path / 'ref'
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(reference), tool_env=dict(PORT=str(port)))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    work = tmp_path / 'work'
    job = Job(dist_train(cfg, '2', '--work-dir', str(work)), MAX_RESTARTS='1', PORT=str(port), NNODES=None,
              SLURM_JOB_ID=None, RUN_ID=None)
    wait_for([job], KILL_AT)
    os.kill(worker_pids(job.proc.pid)[1], signal.SIGKILL)
    code, out = job.finish()
    assert code == 0, out[-4000:]
    assert f"this launch was restarted: resuming from {work / 'latest.pth'}" in out, out[-4000:]
    assert 10 - resumed_iteration(out) <= INTERVAL
    assert_same_weights(reference / 'epoch_2.pth', work / 'epoch_2.pth')


def test_every_launch_has_an_id(tmp_path):
    """Bug: a launch with PORT on one machine got torchrun's default rendezvous id "none", shared by every
    such launch. dist_run.sh passes --rdzv-id: RUN_ID when given, else the Slurm job's, else a new one for
    each one-machine launch; and it asks torchrun for a fresh store in each rendezvous round."""
    def launch(**env):
        args = tmp_path / 'args'
        python = fake_command(tmp_path, 'python', f'if [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\n'
                              f'echo "$TORCH_DISABLE_SHARE_RDZV_TCP_STORE $@" > {args}\n') + '/python'
        base = dict.fromkeys(('PORT', 'MASTER_PORT', 'MASTER_ADDR', 'NNODES', 'SLURM_JOB_ID', 'RUN_ID'))
        proc = run_tool('tools/dist_run.sh', 'train.py', '2', 'cfg.py', tool_env=dict(base, PYTHON=python, **env))
        assert proc.returncode == 0, proc.stderr
        return args.read_text()

    first, second = launch(PORT='1234'), launch(PORT='1234')
    ids = [re.search(r'--rdzv-id=(\S+)', args).group(1) for args in (first, second)]
    assert ids[0] != ids[1] and ids[0] != 'none', ids
    assert first.startswith('1 ')  # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
    assert '--rdzv-id=mine' in launch(PORT='1234', RUN_ID='mine')
    assert '--rdzv-id=4711' in launch(PORT='1234', SLURM_JOB_ID='4711')
    restarts = launch(PORT='1234', MAX_RESTARTS='1', RUN_ID='mine')
    assert '--rdzv-backend=c10d' in restarts and '--rdzv-endpoint=127.0.0.1:1234' in restarts
    assert '--standalone' in launch()  # torchrun's own new id each launch


def test_a_shared_store_with_restarts_is_warned(monkeypatch):
    """A plain ``torchrun --max-restarts`` (not tools/dist_run.sh) keeps the agent's store across restarts:
    the worker says so and names the fix, and says nothing under dist_run.sh's fresh store or without
    restarts."""
    from mmfishnet.utils.dist import _warn_shared_store
    for shared, restarts, warned in (('True', '2', True), ('False', '2', False), ('True', '0', False)):
        monkeypatch.setenv('TORCHELASTIC_USE_AGENT_STORE', shared)
        monkeypatch.setenv('TORCHELASTIC_MAX_RESTARTS', restarts)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            _warn_shared_store()
        messages = [str(w.message) for w in caught]
        if warned:
            assert len(messages) == 1 and 'TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1' in messages[0], messages
        else:
            assert messages == [], (shared, restarts)
