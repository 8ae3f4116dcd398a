"""Detection end to end: forward/backward of Faster and Mask R-CNN with FishNet, tools/train.py then
tools/test.py with COCO metrics, resume, and 2-process CPU training through tools/dist_train.sh."""
import json
import os

import pytest
import torch
from mmengine.config import Config

from helpers import ROOT, run_tool, tiny_det_config, train_then_test
from mmfishnet.datasets import make_toy_coco


@pytest.fixture(scope='module')
def coco_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco')
    make_toy_coco(str(root), num_train=8, num_val=4, size=(96, 128))
    return root


def test_toy_coco_is_valid_coco(coco_data):
    from pycocotools.coco import COCO
    coco = COCO(str(coco_data / 'annotations' / 'instances_train.json'))
    assert len(coco.getImgIds()) == 8 and len(coco.getCatIds()) == 3
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.sum() == ann['area'] > 0
        x, y, w, h = ann['bbox']
        ys, xs = mask.nonzero()
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)


@pytest.mark.parametrize('config', ['configs/faster_rcnn_fishnet99_fpn_1x_coco.py',
                                    'configs/mask_rcnn_fishnet99_fpn_1x_coco.py'])
def test_forward_backward(config):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import DefaultScope, init_default_scope
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.train()
    packed = demo_mm_inputs(2, [[3, 128, 160], [3, 96, 128]], num_items=[3, 2], with_mask='mask' in config)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.head3.trunk[0].conv2.weight.grad is not None
    assert model.backbone.stem[0].conv.weight.grad is None  # frozen_stages=1
    if 'mask' in config:
        assert 'loss_mask' in losses
    assert isinstance(data['data_samples'][0], DetDataSample)


def _coco_metrics(stdout):
    return {k: v for k, v in eval(stdout.strip().splitlines()[-1]).items()}


def test_train_test_and_resume(tmp_path, coco_data):
    work = tmp_path / 'work'
    cfg = tiny_det_config(tmp_path, coco_data, epochs=2)
    ckpt, proc = train_then_test(cfg, work, 'epoch_2.pth', '--show-dir', 'vis')
    metrics = _coco_metrics(proc.stdout)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0 or metrics[key] == -1.0
    drawn = [f for _, _, files in os.walk(work) for f in files if f.endswith('.png')]
    assert len(drawn) == 4  # one picture per val image

    # resume: one more epoch continues at epoch 3 from the epoch-2 checkpoint's iteration
    cfg3 = tiny_det_config(tmp_path, coco_data, epochs=3, name='det3.py')
    proc = run_tool('tools/train.py', cfg3, '--work-dir', str(work), '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2, iter: 8' in log
    assert 'Epoch(train) [3][' in log and 'Epoch(train) [1][' not in log
    state = torch.load(work / 'epoch_3.pth', map_location='cpu')
    assert state['meta']['epoch'] == 3 and state['meta']['iter'] == 12


def test_dist_train_two_processes_on_cpu(tmp_path, coco_data):
    work = tmp_path / 'work'
    cfg = tiny_det_config(tmp_path, coco_data, epochs=1, batch_size=2)
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(work),
                    tool_env=dict(PORT=str(29500 + os.getpid() % 1000)))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    # 8 images, 2 ranks x 2 images: 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in log
    assert (work / 'epoch_1.pth').is_file()
