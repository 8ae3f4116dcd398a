"""Classification end to end through tools/train.py and tools/test.py, and converted official
checkpoints in the ImageNet configs."""
import glob
import json
import os

import pytest
import torch
from mmengine.config import Config

from helpers import ROOT, run_tool, tiny_cls_config, train_then_test
from mmfishnet.datasets import make_toy_classification


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_cls')
    make_toy_classification(str(root), num_train=4, num_val=2, size=64)
    return root


def test_toy_generator_is_deterministic(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    make_toy_classification(str(a), num_train=2, num_val=1, seed=5)
    make_toy_classification(str(b), num_train=2, num_val=1, seed=5)
    files = sorted(os.path.relpath(p, a) for p in glob.glob(str(a / '**' / '*.png'), recursive=True))
    assert len(files) == 12  # 4 classes x (2 + 1)
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_train_then_test_reports_top1(tmp_path, cls_data):
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=2)
    work = tmp_path / 'work'
    ckpt, proc = train_then_test(cfg, work, 'epoch_2.pth')
    assert "'accuracy/top1'" in proc.stdout
    # the checkpoint mmengine's Runner wrote loads under torch's weights_only default
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta']['epoch'] == 2


@pytest.mark.parametrize('arch', ['99', '150', '201'])
def test_converted_official_checkpoint_loads_into_imagenet_config(tmp_path, arch):
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import MODELS
    from test_converter import fake_official
    src, dst = tmp_path / 'src.tar', tmp_path / 'dst.pth'
    torch.save({'state_dict': fake_official(f'fishnet{arch}')}, src)
    proc = run_tool('tools/model_converters/fishnet_to_mmfishnet.py', str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    cfg = Config.fromfile(os.path.join(ROOT, f'configs/fishnet/fishnet{arch}_8xb32_in1k.py'))
    init_default_scope('mmpretrain')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == \
        {'99': 16_628_904, '150': 24_959_400, '201': 44_584_552}[arch]
    model.load_state_dict(torch.load(dst, weights_only=True)['state_dict'], strict=True)
    model.eval()
    with torch.no_grad():
        preds = model(torch.rand(1, 3, 224, 224), mode='predict')
    assert preds[0].pred_score.shape == (1000, ) and 0 <= int(preds[0].pred_label) < 1000
