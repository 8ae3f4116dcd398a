"""The command-line tools not exercised by the training tests: the FLOPs table, the toy data generator,
and the options tools/train.py turns into config settings."""
import filecmp
import os
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from helpers import ROOT, run_tool
from mmfishnet.models import FishNet

TOY_CLS = os.path.join(ROOT, 'configs/toy/fishnet99_1xb16_toy-cls.py')


def conv_macs(model, shape):
    """Multiply-adds of every conv layer for one input of ``shape``, counted with forward hooks from each
    layer's own sizes: k_h * k_w * C_in / groups per output element."""
    total = []

    def count(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total.append(output.numel() * k)

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, *shape))
    for handle in handles:
        handle.remove()
    return sum(total)


def test_get_flops_counts_the_classifier(tmp_path):
    """Catches get_flops.py measuring another model or input than asked (the detection backbone, a
    default 224x224) or a count that is not mmengine's (conv and linear multiply-adds plus under 1 % of
    element-wise ops, docs/backbone.md, "Parameters and FLOPs"): its FishNet-99 row must have the authors' 16.63 M
    parameters and a GFLOPs figure between the conv + linear multiply-adds counted here and 1 % above."""
    md = tmp_path / 'flops.md'
    proc = run_tool('tools/analysis_tools/get_flops.py', '--archs', '99', '--no-detection', '--shape', '64', '96',
                    '--markdown', str(md))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split('|')[1:-1] for line in md.read_text().splitlines()[2:]]
    assert [[c.strip() for c in row[:3]] for row in rows] == [['FishNet-99', '64x96', '16.63']]
    macs = conv_macs(FishNet(arch='99', out_indices=(11, )), (64, 96)) + 1056 * 1000  # + the fc
    gflops = float(rows[0][3])
    assert macs / 1e9 - 0.005 <= gflops <= macs * 1.01 / 1e9 + 0.005, (gflops, macs / 1e9)


def test_make_toy_data_is_deterministic(tmp_path):
    """Catches a toy data generator that draws from an unseeded source (the demo's figures would not
    repeat) or ignores --seed: the same seed writes byte-identical files, another seed other images
    (classification, COCO and the segmentation label maps derived from it)."""
    args = ['--num-train', '2', '--num-val', '1']
    for name, seed in (('a', '0'), ('b', '0'), ('c', '1')):
        proc = run_tool('tools/data/make_toy_data.py', '--out-dir', str(tmp_path / name), '--seed', seed, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(os.path.relpath(os.path.join(d, f), tmp_path / 'a') for d, _, fs in os.walk(tmp_path / 'a')
                   for f in fs)
    # cls: 4 classes x 3; coco: 2 + 1; seg (from coco): 3 images + 3 label maps
    assert len([f for f in files if f.endswith('.png')]) == 4 * 3 + 3 + 3 * 2
    assert any(f.endswith('.json') for f in files)
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', files, shallow=False)
    assert not mismatch and not errors
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'c', files, shallow=False)
    for dataset in ('toy_cls', 'toy_coco', 'toy_seg'):  # every generator follows --seed
        assert [f for f in mismatch if f.startswith(dataset) and f.endswith('.png')], dataset


def test_toy_coco_val_size_leaves_the_training_images_alone(tmp_path):
    """Catches a toy COCO whose training images depend on the val split's size (val drawn first, or from
    a stream seeded by the sizes): the detector spread of docs/development.md evaluates the same trained
    weights on 40, 400 and 1000 val images, and the demo's 1000 must not change what the detector trains
    on. Also catches the val default shrinking back below 1000 images, where the same weights spread over
    3.9 / 6.2 points of bbox / segm mAP (docs/development.md, "How far the demo figures move", measured
    with 40 images)."""
    import inspect

    from mmfishnet.datasets import make_toy_coco
    assert inspect.signature(make_toy_coco).parameters['num_val'].default >= 1000
    for name, num_val in (('small', 1), ('large', 3)):
        make_toy_coco(str(tmp_path / name), num_train=2, num_val=num_val, size=(32, 32))
    train = [os.path.join('train', f) for f in sorted(os.listdir(tmp_path / 'small' / 'train'))]
    shared = train + ['annotations/instances_train.json', 'val/val_00001.png']
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'small', tmp_path / 'large', shared, shallow=False)
    assert len(train) == 2 and match == shared, (mismatch, errors)


@pytest.fixture(scope='module')
def train_tool():
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    import train
    yield train
    sys.path.remove(os.path.join(ROOT, 'tools'))


def test_amp_flag_switches_to_the_amp_optimizer_wrapper(train_tool):
    """Catches --amp not reaching the optimizer wrapper (training silently in fp32) or replacing the
    config's optimizer: --amp means exactly ``optim_wrapper.type=AmpOptimWrapper
    optim_wrapper.loss_scale=dynamic`` (docs/detection.md), everything else of the wrapper kept."""
    from mmfishnet.utils.runner_setup import load_config  # what tools/train.py's main reads the config with
    plain = Config.fromfile(TOY_CLS).optim_wrapper.to_dict()
    args = train_tool.parse_args([TOY_CLS, '--amp'])
    cfg = load_config(args)
    train_tool.apply_training_options(cfg, args)
    assert cfg.optim_wrapper.to_dict() == dict(plain, type='AmpOptimWrapper', loss_scale='dynamic')
    args = train_tool.parse_args([TOY_CLS])
    cfg = load_config(args)
    train_tool.apply_training_options(cfg, args)
    assert cfg.optim_wrapper.to_dict() == plain
