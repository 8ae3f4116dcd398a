"""Resuming an iteration-based run (issue 23, point 10): exact with persistent data-loading workers, and
free: a resume loads none of the done iterations' samples, wherever it resumes. The toy segmentation
config (UPerNet, FishNet-99) on 8 images of 64x64, 2 a batch, so iterations 5 and 6 are the second pass."""
import json
import os

import pytest
import torch

from helpers import ROOT, run_tool, write_config

PLUGINS = os.path.join(ROOT, 'tests', 'plugins')
BATCH, ITERS = 2, 6
BODY = """
custom_imports = dict(imports=['mmfishnet', 'load_recorder', 'stream_recorder'], allow_failed_imports=False)
custom_hooks = [dict(type='RandomStateHook'), dict(type='RandomStreamRecorder')]
data_root = {root!r}
train_pipeline = [dict(type='LoadRecorder'), dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion'), dict(type='PackSegInputs')]
train_dataloader = dict(batch_size={batch}, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(backbone=dict(init_cfg=None), data_preprocessor=dict(size=(64, 64)))
train_cfg = dict(max_iters={iters}, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2, max_keep_ckpts=-1))
"""
WORKERS = ('--cfg-options', 'train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Train the uninterrupted run (``num_workers=0``); ``runs(name, *args)`` trains another into ``name``.
    Each run's loaded samples ([index, fingerprint] per line) and main-process draws are recorded."""
    from mmfishnet.datasets import make_toy_coco, make_toy_seg
    tmp = tmp_path_factory.mktemp('free_resume')
    make_toy_coco(str(tmp / 'coco'), num_train=8, num_val=2, size=(64, 64))
    make_toy_seg(str(tmp / 'seg'), str(tmp / 'coco'))
    cfg = write_config(tmp / 'seg.py', 'configs/toy/upernet_fishnet99_toy-seg.py',
                       BODY.format(root=str(tmp / 'seg'), batch=BATCH, iters=ITERS))

    def run(name, *args):
        env = dict(LOAD_RECORD=str(tmp / f'{name}.loads'), STREAM_RECORD=str(tmp / f'{name}.streams'),
                   PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', ''))
        proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp / name), *args, tool_env=env)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        with open(tmp / f'{name}.loads') as f:
            loads = [tuple(json.loads(line)) for line in f]
        with open(tmp / f'{name}.streams.0') as f:
            streams = {row[0]: row[1:] for row in map(json.loads, f)}
        return tmp / name, loads, streams, proc.stdout + proc.stderr

    run.ref = run('ref')
    return run


def weights(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_resume_with_persistent_workers_equals_the_uninterrupted_run(runs):
    """Bug: a resumed iteration-based run with persistent data-loading workers drew other random
    augmentations than the uninterrupted run ("inexact, warned"), because each sample's augmentation came
    from its worker's stream, which no checkpoint holds. Resumed from iteration 2 with 2 persistent workers,
    the run loads exactly the samples of iterations 3-6 of the uninterrupted run (num_workers=0: its
    loading order is the stream) with the same fingerprints (the first NumPy draw of each sample's
    pipeline), draws the same in the main process (RandomStateHook: dropout, ...) and ends with its weights."""
    ref_dir, ref_loads, ref_streams, _ = runs.ref
    work, loads, streams, log = runs('workers', '--resume', str(ref_dir / 'iter_2.pth'), *WORKERS)
    assert len(ref_loads) == ITERS * BATCH
    trained = ref_loads[2 * BATCH:]
    assert set(trained) <= set(loads), (trained, loads)  # prefetching may load samples past the last iteration
    assert not set(ref_loads[:2 * BATCH]) & set(loads)  # nothing of the done iterations
    assert [streams[i] for i in range(2, ITERS)] == [ref_streams[i] for i in range(2, ITERS)]
    assert 'persistent data-loading workers restart' not in log  # the old "inexact" warning
    a, b = weights(ref_dir / f'iter_{ITERS}.pth'), weights(work / f'iter_{ITERS}.pth')
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_loads_none_of_the_done_iterations(runs):
    """Bug: mmengine's IterBasedTrainLoop loads and drops the data of every done iteration on resume (up to
    half an hour late in an ADE20K run, growing with the iteration). Resumed from iteration 4
    (num_workers=0: nothing is prefetched), the pipeline runs exactly for the 4 samples of iterations 5-6,
    the uninterrupted run's; from iteration 2 (the test above, with workers) it ran for none of iterations
    1-2: 0 samples of the done iterations loaded at both positions."""
    ref_dir, ref_loads, _, _ = runs.ref
    _, loads, _, _ = runs('late', '--resume', str(ref_dir / 'iter_4.pth'))
    assert loads == ref_loads[4 * BATCH:]


def test_sampler_starts_anywhere_without_the_passes_before():
    """The sampler's stream from a start position is the tail of its stream from 0, across passes and for
    each of 3 ranks (rank r takes every third sample of the global stream, as mmengine's InfiniteSampler
    splits it), and each pass is a permutation of the dataset. Catches a start that shifts the stream
    (wrong rank stride or pass) and a pass order that depends on the passes computed before it."""
    from itertools import islice
    from unittest import mock

    from mmfishnet.engine import ResumableInfiniteSampler
    size, ranks = 7, 3
    streams = {}
    for rank in range(ranks):
        with mock.patch('mmfishnet.engine.seeded_samples.get_dist_info', return_value=(rank, ranks)):
            sampler = ResumableInfiniteSampler(range(size), seed=5)
        streams[rank] = [(k.epoch, int(k)) for k in islice(iter(sampler), 20)]
        sampler.set_start(11)
        assert [(k.epoch, int(k)) for k in islice(iter(sampler), 9)] == streams[rank][11:]
    merged = [streams[r][k] for k in range(20) for r in range(ranks)]  # the global stream
    for epoch in range(4):
        assert sorted(i for e, i in merged if e == epoch) == list(range(size))
    sampler.set_start(None)
    assert list(iter(sampler)) == []


def test_a_sampler_that_cannot_start_anywhere_is_refused():
    """Bad input: ResumableIterBasedTrainLoop with mmengine's InfiniteSampler (which a resume would have to
    replay) or with a batch sampler (whose batches are not consecutive samples) gets a one-line error that
    names the setting to use, instead of training on wrong samples."""
    from mmfishnet.engine.loops import _seeded_loader_cfg
    from mmfishnet.utils.errors import UserError
    with pytest.raises(UserError, match=r"sampler=dict\(type='ResumableInfiniteSampler'"):
        _seeded_loader_cfg(dict(sampler=dict(type='InfiniteSampler'), dataset=dict(type='BaseSegDataset')))
    with pytest.raises(UserError, match='remove train_dataloader.batch_sampler'):
        _seeded_loader_cfg(dict(sampler=dict(type='ResumableInfiniteSampler'), dataset=dict(type='X'),
                                batch_sampler=dict(type='AspectRatioBatchSampler')))
    cfg = _seeded_loader_cfg(dict(sampler=dict(type='ResumableInfiniteSampler'), dataset=dict(type='X')))
    assert cfg['dataset'] == dict(type='SeededSamples', dataset=dict(type='X')) and cfg['sampler']['start'] is None
