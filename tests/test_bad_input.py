"""Every row of the error table (docs/errors.md): the bad input, and the one clear message it gets.
(Backbone arguments and tensors: tests/test_backbone.py; converter: tests/test_converter.py.)"""
import os

import pytest
import torch

from helpers import ROOT, run_tool, tiny_cls_config
from mmfishnet.models import FishNet
from mmfishnet.utils.checkpoint import CheckpointError


@pytest.fixture(scope='module')
def fishnet99_ckpt(tmp_path_factory):
    """A converted-layout FishNet-99 classifier checkpoint (random weights)."""
    path = tmp_path_factory.mktemp('ckpt') / 'fishnet99.pth'
    backbone = FishNet(arch='99', out_indices=(11, ))
    # distinct from any freshly initialised model's values (BN weights and statistics are 1 / 0 / 1 there)
    g = torch.Generator().manual_seed(0)
    state = {f'backbone.{k}': v + torch.rand(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(4, 1056)
    state['head.fc.bias'] = torch.zeros(4)
    torch.save({'state_dict': state, 'meta': {'arch': 'fishnet99'}}, path)
    return path


def one_line_error(proc):
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-2000:]
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') or any(line.startswith('error: ') for line in lines)
    return proc.stderr


def pretrained(path, prefix='backbone.'):
    return dict(type='Pretrained', checkpoint=str(path), prefix=prefix)


def test_pretrained_backbone_loads_strictly_for_built_stages(tmp_path, fishnet99_ckpt):
    """Catches a Pretrained init that loads nothing, part of the file, or the wrong prefix (mmengine's own
    loads with strict=False and only logs): every tensor of the detection backbone must then be the
    checkpoint's, the classifier's score stage is ignored, and one missing tensor is an error."""
    weights = torch.load(fishnet99_ckpt, weights_only=True)['state_dict']
    model = FishNet(arch='99', init_cfg=pretrained(fishnet99_ckpt))  # detection backbone: no score stage
    model.init_weights()
    own = model.state_dict()
    assert own.keys() == {k[len('backbone.'):] for k in weights if k.startswith('backbone.') and
                          not k.startswith('backbone.score.')}
    for key, value in own.items():
        assert torch.equal(value, weights[f'backbone.{key}']), key
    del weights['backbone.head3.trunk.1.conv2.weight']
    torch.save({'state_dict': weights}, tmp_path / 'incomplete.pth')
    model = FishNet(arch='99', init_cfg=pretrained(tmp_path / 'incomplete.pth'))
    with pytest.raises(CheckpointError, match='1 of the model.s .* tensors are missing, e.g. head3.trunk.1.conv2'):
        model.init_weights()


@pytest.mark.parametrize('make, match', [
    ('other_arch', 'does not fit this FishNet \\(it was converted from fishnet99\\).*another arch'),
    # FishNet-99's tensors are a subset of FishNet-150's, same shapes: only the extra ones tell them apart
    ('bigger_arch', 'does not fit this FishNet \\(it was converted from fishnet150\\): .* tensors are not in the model'),
    ('official', 'official FishNet checkpoint; convert it first'),
    ('resnet', 'a ResNet checkpoint'),
    ('corrupt', 'cannot be read as a torch checkpoint'),
    ('missing', 'no such checkpoint file'),
    ('no_prefix', 'no FishNet weights under prefix'),
])
def test_wrong_pretrained_checkpoint(tmp_path, fishnet99_ckpt, make, match):
    path, prefix = tmp_path / 'x.pth', 'backbone.'
    if make == 'other_arch':
        path = fishnet99_ckpt
    elif make == 'official':
        torch.save({'state_dict': {'module.fish.fish.0.0.0.bn1.weight': torch.ones(64)}}, path)
    elif make == 'resnet':
        torch.save({'state_dict': {'conv1.weight': torch.ones(64, 3, 7, 7), 'layer1.0.conv1.weight': torch.ones(1)}},
                   path)
        prefix = ''
    elif make == 'corrupt':
        path.write_bytes(fishnet99_ckpt.read_bytes()[:5000])
    elif make == 'no_prefix':
        path, prefix = fishnet99_ckpt, 'detector.backbone.'
    elif make == 'bigger_arch':
        state = {f'backbone.{k}': v for k, v in FishNet(arch='150', out_indices=(10, )).state_dict().items()}
        torch.save({'state_dict': state, 'meta': {'arch': 'fishnet150'}}, path)
    arch = '150' if make == 'other_arch' else '99'
    model = FishNet(arch=arch, init_cfg=pretrained(path, prefix))
    with pytest.raises((CheckpointError, FileNotFoundError), match=match):
        model.init_weights()


def test_tool_missing_dataset_directory(tmp_path):
    cfg = tiny_cls_config(tmp_path, tmp_path / 'no_such_data')
    err = one_line_error(run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w')))
    assert 'no_such_data does not exist' in err and 'make_toy_data.py' in err


def test_tool_missing_pretrained_checkpoint(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data, extra=(
        "model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='nowhere/fishnet99.pth', "
        "prefix='backbone.')))"))
    err = one_line_error(run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w')))
    assert 'nowhere/fishnet99.pth does not exist' in err and 'fishnet_to_mmfishnet.py' in err


def test_tool_pretrained_of_another_arch(tmp_path, cls_data, fishnet99_ckpt):
    cfg = tiny_cls_config(tmp_path, cls_data, extra=(
        f"model = dict(backbone=dict(arch='150', init_cfg=dict(type='Pretrained', checkpoint={str(fishnet99_ckpt)!r}, "
        "prefix='backbone.')))"))
    err = one_line_error(run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w')))
    assert 'another arch' in err


def test_tool_num_classes_mismatch(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data, extra="model = dict(head=dict(num_classes=10))")
    err = one_line_error(run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w')))
    assert 'model.head.num_classes=10 but the train dataset has 4 classes' in err
    assert 'set model.head.num_classes=4' in err


@pytest.mark.parametrize('make, match', [
    ('corrupt', 'cannot be read as a torch checkpoint'),
    ('missing', 'no such checkpoint file'),
    ('pickle', 'If you trust this file, pass --trust-checkpoint'),
])
def test_tool_bad_checkpoint_for_test(tmp_path, cls_data, fishnet99_ckpt, make, match):
    cfg = tiny_cls_config(tmp_path, cls_data)
    path = tmp_path / 'bad.pth'
    if make == 'corrupt':
        path.write_bytes(fishnet99_ckpt.read_bytes()[:5000])
    elif make == 'pickle':
        import argparse
        torch.save({'state_dict': {}, 'args': argparse.Namespace(lr=0.1)}, path)
    err = one_line_error(run_tool('tools/test.py', cfg, str(path), '--work-dir', str(tmp_path / 'w')))
    assert match in err


def test_tool_checkpoint_of_another_model_given_to_test(tmp_path, cls_data, fishnet99_ckpt):
    cfg = tiny_cls_config(tmp_path, cls_data, extra="model = dict(backbone=dict(arch='150'))")
    err = one_line_error(run_tool('tools/test.py', cfg, str(fishnet99_ckpt), '--work-dir', str(tmp_path / 'w')))
    assert 'does not fit the model' in err and 'backbone.tail2.units.2' in err


def test_tool_official_checkpoint_given_to_test(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data)
    path = tmp_path / 'fishnet99_ckpt.tar'
    torch.save({'state_dict': {'module.fish.fish.0.0.0.bn1.weight': torch.ones(64)}}, path)
    err = one_line_error(run_tool('tools/test.py', cfg, str(path), '--work-dir', str(tmp_path / 'w')))
    assert 'official FishNet checkpoint; convert it first' in err


@pytest.mark.parametrize('args, match', [
    (['no/such/config.py'], 'config file no/such/config.py does not exist'),
    (['configs/toy/fishnet99_1xb16_toy-cls.py', '--auto-scale-lr'], 'auto_scale_lr.base_batch_size'),
])
def test_tool_bad_command_line(args, match):
    err = one_line_error(run_tool('tools/train.py', *args))
    assert match in err


def test_converter_bad_arguments():
    proc = run_tool('tools/model_converters/fishnet_to_mmfishnet.py')
    assert proc.returncode == 2 and 'the following arguments are required: src, dst' in proc.stderr


def test_syncbn_on_cpu_is_refused(tmp_path, cls_data):
    """Also on a machine with GPUs, simulated by tests/plugins/fake_gpu (torch.cuda.is_available() is True
    unless CUDA_VISIBLE_DEVICES is empty): the suite's tool runs used to take the NCCL path there and met no
    refusal (issue 11)."""
    cfg = tiny_cls_config(tmp_path, cls_data, extra="model = dict(backbone=dict(norm_cfg=dict(type='SyncBN')))")
    fake_gpu = os.path.join(ROOT, 'tests', 'plugins', 'fake_gpu')
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(tmp_path / 'w'),
                    tool_env=dict(PORT=str(21000 + os.getpid() % 1000),
                                  PYTHONPATH=fake_gpu + os.pathsep + os.environ.get('PYTHONPATH', '')))
    assert proc.returncode != 0
    assert 'SyncBN needs GPUs' in proc.stdout + proc.stderr


PETREL = dict(backend='petrel', path_mapping={'data/': 's3://openmmlab/datasets/'})


@pytest.mark.parametrize('data_root, backend_args, in_pipeline_only', [
    ('s3://openmmlab/datasets/coco/', None, False),  # a URI prefix: mmengine's PetrelBackend
    ('cluster1:s3://openmmlab/datasets/coco/', None, False),  # petrel's cluster-name prefix
    ('http://127.0.0.1:9/coco/', None, False),  # HTTPBackend
    ('data/no_such_coco/', PETREL, False),  # a local-looking root that petrel's path_mapping sends to Ceph
    ('data/no_such_coco/', PETREL, True),  # the images read through the pipeline's backend_args
])
def test_data_read_through_mmengine_backends_is_left_to_mmengine(capsys, data_root, backend_args,
                                                                  in_pipeline_only):
    """Bug (#19, item 3): check_dataset_paths tested every data_root and ann_file with os.path.exists, so
    the usual OpenMMLab cluster set-up (data on Ceph/S3 read through backend_args, a URI prefix or petrel's
    path_mapping) was refused before training started, with no way to skip the check. Such paths are left
    to mmengine with one note; a local path that is missing is still refused."""
    from mmengine.config import Config
    from mmfishnet.utils.cli import UserError
    from mmfishnet.utils.config_checks import check_dataset_paths

    def config(root, args, pipeline_only=False):
        dataset = dict(type='CocoDataset', data_root=root, ann_file='annotations/instances_train2017.json',
                       pipeline=[dict(type='LoadImageFromFile', backend_args=args)])
        if not pipeline_only:
            dataset['backend_args'] = args
        return Config(dict(train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dataset))))

    check_dataset_paths(config(data_root, backend_args, in_pipeline_only), splits=('train', ))
    out = capsys.readouterr().out
    assert out.count('\n') == 1 and out.startswith('note: not checked') and f'train data {data_root}' in out
    for local in (None, dict(backend='local')):  # the same root on the local disk: refused as before
        with pytest.raises(UserError, match='data/no_such_coco/ does not exist'):
            check_dataset_paths(config('data/no_such_coco/', local), splits=('train', ))


def test_first_shortcut_mismatch_names_the_setting():
    """Catches a FishNet-201 welltrain checkpoint (converted: a bare conv as tail1's first shortcut) loaded
    into a backbone built without bare_first_shortcut, or an old conversion (a norm added there) into one
    built with it, failing without the setting that fixes it."""
    from mmfishnet.utils.checkpoint import describe_mismatch
    with torch.device('meta'):  # shapes only
        preact, bare = (FishNet(arch='201', out_indices=(10, ), bare_first_shortcut=b).state_dict()
                         for b in (False, True))
    assert describe_mismatch(preact, bare, extra_in='all').endswith('build the backbone with bare_first_shortcut=True')
    assert 'set it False, or convert the FishNet-201 welltrain weights again' in describe_mismatch(bare, preact)
    assert describe_mismatch(bare, bare) is None
