"""Interrupted training loses nothing, many ranks equal one, numerical faults stop training, and
checkpoints are written and read safely."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, cpu_tool_env, run_tool, tiny_cls_config
from mmfishnet.engine import NonFiniteLossHook
from mmfishnet.utils.checkpoint import atomic_save, find_resumable_checkpoint, is_complete_checkpoint

PLUGINS = os.path.join(ROOT, 'tests', 'plugins')


def weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=4)  # 48 images, batch 8: 6 iterations an epoch
    ref = tmp_path / 'ref'
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(ref))
    assert proc.returncode == 0, proc.stderr[-3000:]

    work = tmp_path / 'killed'
    cmd = [sys.executable, os.path.join(ROOT, 'tools/train.py'), cfg, '--work-dir', str(work)]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=cpu_tool_env())  # on CPU as the reference run, also on a GPU machine
    killed_at = None
    deadline = time.time() + 600
    for line in child.stdout:
        if 'Epoch(train) [3][2/6]' in line:  # mid-epoch 3, after epoch_2.pth was written
            child.send_signal(signal.SIGKILL)
            killed_at = line
            break
        assert time.time() < deadline
    child.wait()
    assert killed_at is not None and child.returncode == -signal.SIGKILL
    assert not (work / 'epoch_3.pth').exists()

    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work), '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 2, iter: 12' in proc.stdout + proc.stderr
    a, b = weights(ref / 'epoch_4.pth'), weights(work / 'epoch_4.pth')
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_two_ranks_match_one_rank(tmp_path, cls_data):
    """Same global batch (1 x 8 vs 2 x 4), same data order: the all-rank mean loss follows the same curve.
    With plain BN each rank normalises with its own 4-image statistics, so the curves agree within a
    tolerance (stated in docs/distributed_training.md); with a batch-independent norm (GN) they agree to
    float precision at the first iteration and within 1 % over the run (summation order differs between 1
    and 2 ranks)."""
    curves = {}
    gn = "dict(type='GN', num_groups=16)"
    for name, nproc, batch, norm in [('one', 1, 8, "dict(type='BN')"), ('two', 2, 4, "dict(type='BN')"),
                                     ('one_gn', 1, 8, gn), ('two_gn', 2, 4, gn)]:
        extra = f"""
custom_imports = dict(imports=['mmfishnet', 'loss_recorder'], allow_failed_imports=False)
custom_hooks = [dict(type='GlobalLossRecorder')]
train_dataloader = dict(batch_size={batch}, dataset=dict(data_root={str(cls_data)!r},
                        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
model = dict(backbone=dict(norm_cfg={norm}))
optim_wrapper = dict(optimizer=dict(lr=0.0005))
"""
        (tmp_path / name).mkdir()
        cfg = tiny_cls_config(tmp_path / name, cls_data, epochs=2, extra=extra)
        record = tmp_path / f'{name}.json'
        env = dict(LOSS_RECORD=str(record), PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', ''),
                   PORT=str(20000 + (os.getpid() * 7 + nproc) % 20000))
        if nproc == 1:
            proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / name / 'work'), tool_env=env)
        else:
            proc = run_tool('tools/dist_train.sh', cfg, str(nproc), '--work-dir', str(tmp_path / name / 'work'),
                            tool_env=env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        curves[name] = json.loads(record.read_text())
    assert len(curves['one']) == len(curves['two']) == 12
    one_gn, two_gn = curves['one_gn'], curves['two_gn']
    assert abs(one_gn[0] - two_gn[0]) <= 1e-5 * one_gn[0], (one_gn, two_gn)  # same weights, same images
    for a, b in zip(one_gn, two_gn):  # then only float summation order differs, amplified by training
        assert abs(a - b) <= 1e-2 * a, (one_gn, two_gn)
    one, two = curves['one'], curves['two']
    print('BN curves (1 rank, 2 ranks):', one, two)
    # plain BN: each rank normalises 4 images instead of 8, so only the curve as a whole matches
    assert abs(one[0] - two[0]) <= 0.15 * one[0], (one, two)
    assert abs(sum(one) - sum(two)) <= 0.05 * sum(one), (one, two)


class FakeRunner:
    iter, epoch = 41, 3


def test_non_finite_loss_names_the_iteration():
    hook = NonFiniteLossHook()
    hook.after_train_iter(FakeRunner(), 5, outputs=dict(loss=torch.tensor(1.5)))
    with pytest.raises(FloatingPointError, match='iteration 42 .*epoch 4.*loss_cls=nan'):
        hook.after_train_iter(FakeRunner(), 5, outputs=dict(loss=torch.tensor(float('nan')),
                                                             loss_cls=torch.tensor(float('nan'))))
    with pytest.raises(ValueError):
        NonFiniteLossHook(interval=0)


def test_diverging_training_stops_with_a_message(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=2, extra="optim_wrapper = dict(optimizer=dict(lr=1e30))")
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'work'))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: the loss became') and 'at iteration' in last
    assert 'Traceback' not in proc.stderr
    assert not list((tmp_path / 'work').glob('epoch_*.pth'))


def test_a_kill_while_saving_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / 'ckpt.pth'
    atomic_save({'state_dict': {'w': torch.zeros(3)}}, str(path))
    script = (f"import torch, sys; sys.path.insert(0, {ROOT!r})\n"
              "from mmfishnet.utils.checkpoint import atomic_write\n"
              "def slow(f):\n"
              "    f.write(b'PK' + b'x' * 1000); f.flush(); print('writing', flush=True); import time; time.sleep(60)\n"
              f"atomic_write({str(path)!r}, slow)\n")
    child = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == 'writing'
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert is_complete_checkpoint(str(path))
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.zeros(3))


def test_resume_skips_a_partial_checkpoint(tmp_path):
    atomic_save({'state_dict': {}, 'meta': {'epoch': 1}}, str(tmp_path / 'epoch_1.pth'))
    time.sleep(0.01)
    good = (tmp_path / 'epoch_1.pth').read_bytes()
    (tmp_path / 'epoch_2.pth').write_bytes(good[:len(good) // 2])  # as a plain torch.save killed midway
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text('')  # a pointer file truncated by a kill
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    assert find_resumable_checkpoint(str(tmp_path / 'nothing')) is None


def train_until_killed(tmp_path, cls_data, extra):
    """Train 3 epochs of the tiny classifier with ``extra`` (whose KillWhileSaving hook SIGKILLs the run while
    it saves); returns the work dir."""
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=3, extra=extra)
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work),
                    tool_env=dict(PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', '')))
    assert proc.returncode == -signal.SIGKILL, (proc.stdout + proc.stderr)[-3000:]
    return work


def test_outdated_checkpoint_deleted_after_the_new_one(tmp_path, cls_data):
    """Catches deleting the outdated checkpoint before the new one is complete (mmengine's CheckpointHook
    does, with max_keep_ckpts), which leaves no checkpoint when the save is interrupted: with
    max_keep_ckpts=1, killed while epoch 3's checkpoint is being saved, the run has deleted epoch_1.pth
    (once epoch_2.pth was complete) and kept epoch_2.pth, complete, recording itself as the one kept."""
    extra = """
custom_imports = dict(imports=['mmfishnet', 'save_killer'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='KillWhileSaving', epoch=3)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=1))
"""
    work = train_until_killed(tmp_path, cls_data, extra)
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_2.pth']
    assert is_complete_checkpoint(str(work / 'epoch_2.pth'))
    assert find_resumable_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    state = torch.load(work / 'epoch_2.pth', map_location='cpu')
    assert state['message_hub']['runtime_info']['keep_ckpt_ids'] == [2]


class _MappedTensor(torch.Tensor):
    """A tensor that reports a non-CPU device, as the random states of a checkpoint read back by
    ``Runner.resume`` on a GPU machine do (mmengine maps the whole checkpoint to ``get_device()``)."""
    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def device(self):
        return torch.device('cuda', 0)


class _ResumeRunner:
    """What RandomStateHook reads of a runner; deliberately no private ``_resume`` attribute."""

    def __init__(self, it):
        import logging
        self.iter, self.hooks, self.logger = it, [], logging.getLogger('test')


def test_random_state_from_a_device_mapped_checkpoint_is_restored(monkeypatch):
    """Bug: on a GPU, resume handed torch.set_rng_state the CUDA tensor mmengine mapped the checkpoint to
    (it takes only a CPU ByteTensor) and crashed every GPU user's --resume; it also read the private
    runner._resume. Simulated: the saved states come back as tensors claiming a CUDA device, and
    set_rng_state refuses anything but a plain CPU ByteTensor, as torch does for a real CUDA tensor."""
    from mmfishnet.engine import RandomStateHook
    hook = RandomStateHook()
    runner = _ResumeRunner(it=12)
    checkpoint = {}
    torch.manual_seed(123)
    hook.before_save_checkpoint(runner, checkpoint)
    expected = torch.rand(4)
    for state in checkpoint['random_state']['ranks']:
        state['torch'] = state['torch'].as_subclass(_MappedTensor)
    real_set = torch.set_rng_state

    def strict_set(state):
        assert type(state) is torch.Tensor and state.device.type == 'cpu' and state.dtype == torch.uint8, state
        real_set(state)

    monkeypatch.setattr(torch, 'set_rng_state', strict_set)
    torch.manual_seed(0)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert torch.equal(torch.rand(4), expected)  # the stream continues where the checkpoint left it


def test_random_state_untouched_when_a_checkpoint_is_only_loaded():
    """Bug: restoring the saved streams for ``load_from`` (fine-tuning from a checkpoint, iteration 0) would
    replay the old run's draws instead of the new run's seed."""
    from mmfishnet.engine import RandomStateHook
    hook, checkpoint = RandomStateHook(), {}
    torch.manual_seed(1)
    hook.before_save_checkpoint(_ResumeRunner(it=12), checkpoint)
    torch.manual_seed(2)
    expected = torch.get_rng_state()
    runner = _ResumeRunner(it=0)
    hook.after_load_checkpoint(runner, checkpoint)
    hook.before_train(runner)
    assert torch.equal(torch.get_rng_state(), expected)


def test_two_ranks_resume_continues_each_ranks_stream(tmp_path, cls_data):
    """Bug: rank 0's random states were saved and restored on every rank, so after a resume the other ranks
    drew rank 0's augmentations. With ``diff_rank_seed`` every rank flips different images; a 2-rank run
    resumed from its epoch-2 checkpoint must end with exactly the weights of the uninterrupted run."""
    extra = f"""
randomness = dict(seed=0, diff_rank_seed=True)
train_dataloader = dict(batch_size=4, dataset=dict(data_root={str(cls_data)!r}))
"""
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=3, extra=extra)
    env = dict(PORT=str(20000 + (os.getpid() * 11) % 20000))
    ref = tmp_path / 'ref'
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(ref), tool_env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    saved = torch.load(ref / 'epoch_2.pth', map_location='cpu')['random_state']
    assert saved['world_size'] == 2
    assert not torch.equal(saved['ranks'][0]['torch'], saved['ranks'][1]['torch'])  # diff_rank_seed
    resumed = tmp_path / 'resumed'
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(resumed), '--resume',
                    str(ref / 'epoch_2.pth'), tool_env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    a, b = weights(ref / 'epoch_3.pth'), weights(resumed / 'epoch_3.pth')
    for key in a:
        assert torch.equal(a[key], b[key]), key


def read_streams(prefix, rank):
    """The draws RandomStreamRecorder wrote for ``rank``: {iteration: [python, numpy, torch]}."""
    with open(f'{prefix}.{rank}') as f:
        return {row[0]: row[1:] for row in map(json.loads, f)}


def test_iteration_based_resume_continues_every_ranks_streams(tmp_path, cls_data):
    """Bugs (issue 19, items 1 and 2), on 2 ranks of an iteration-based run with num_workers=0 that validates
    between checkpoints:
    1. RandomStateHook guessed when the checkpoint hook saves from its interval alone: the checkpoints that
       ``save_begin`` shifts (iterations 3, 5, 7 here) and the best checkpoints with the re-save that
       ``save_best`` makes during validation had no ``random_state``, so a resume from them started the
       streams from the seed.
    2. The states were restored in ``before_train``, before mmengine's loop replays the data of the done
       iterations, which draws from them with num_workers=0; and validation drew from the training streams
       after the checkpoint of its iteration was taken.
    Every checkpoint must hold both ranks' states, and a run resumed from the checkpoint re-saved during
    the validation at iteration 4 must draw what the uninterrupted run drew and end with its weights."""
    extra = f"""
custom_imports = dict(imports=['mmfishnet', 'stream_recorder', 'val_counter'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='RandomStreamRecorder')]
randomness = dict(seed=0, diff_rank_seed=True)
train_dataloader = dict(batch_size=4, sampler=dict(type='ResumableInfiniteSampler'),
                        dataset=dict(data_root={str(cls_data)!r}))
train_cfg = dict(_delete_=True, type='ResumableIterBasedTrainLoop', max_iters=8, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=8)]
val_evaluator = dict(_delete_=True, type='ValCounter')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(
    by_epoch=False, interval=2, save_begin=3, max_keep_ckpts=-1, save_best='count', rule='greater'))
"""
    cfg = tiny_cls_config(tmp_path, cls_data, extra=extra)
    port = 20000 + (os.getpid() * 13) % 20000
    runs = {}
    for name, resume in [('ref', ()), ('resumed', ('--resume', str(tmp_path / 'ref' / 'iter_4.pth')))]:
        env = dict(PORT=str(port), STREAM_RECORD=str(tmp_path / f'{name}.jsonl'),
                   PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', ''))
        proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(tmp_path / name), *resume, tool_env=env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        runs[name] = tmp_path / name
        if name == 'ref':
            saved = sorted(p.name for p in runs['ref'].glob('*.pth'))
            assert {'iter_3.pth', 'iter_4.pth', 'iter_5.pth', 'best_count_iter_8.pth'} <= set(saved), saved
            for ckpt in saved:
                state = torch.load(runs['ref'] / ckpt, map_location='cpu').get('random_state')
                assert state is not None and state['world_size'] == 2, ckpt
    for rank in (0, 1):
        ref, resumed = read_streams(tmp_path / 'ref.jsonl', rank), read_streams(tmp_path / 'resumed.jsonl', rank)
        assert sorted(resumed) == [4, 5, 6, 7]
        assert [resumed[i] for i in range(4, 8)] == [ref[i] for i in range(4, 8)], rank
    a, b = weights(runs['ref'] / 'iter_8.pth'), weights(runs['resumed'] / 'iter_8.pth')
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_previous_best_checkpoint_deleted_after_the_new_one(tmp_path, cls_data):
    """Bug (issue 19, item 5): mmengine's CheckpointHook deletes the previous best_*.pth before it writes the
    new one, so a kill while saving a new best left no best checkpoint at all. Killed while saving the third
    best (epoch 3, every validation a new best): the second (epoch 2) must be there and complete, and the
    first gone (deleted once the second and the re-save recording it were complete)."""
    extra = """
custom_imports = dict(imports=['mmfishnet', 'save_killer', 'val_counter'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='KillWhileSaving', epoch=3, best=True)]
train_cfg = dict(max_epochs=3, val_interval=1)
val_evaluator = dict(_delete_=True, type='ValCounter')
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1, save_best='count',
                                                             rule='greater'))
"""
    work = train_until_killed(tmp_path, cls_data, extra)
    assert sorted(p.name for p in work.glob('best_*.pth')) == ['best_count_epoch_2.pth']
    assert is_complete_checkpoint(str(work / 'best_count_epoch_2.pth'))
    assert (work / 'epoch_3.pth').exists()  # the regular checkpoint of epoch 3 came first
