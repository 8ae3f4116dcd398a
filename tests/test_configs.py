import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

from helpers import ROOT

CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if f'{os.sep}_base_{os.sep}' not in p)
# CLASSIFIER_PARAMS: the authors' released model definitions (docs/backbone.md). DETECTION_PARAMS, outputs
# (7, 8, 9, 10),
# which mmdet's FPN and mmseg's UPerNet both take: the same without the score stage and the 1000-way fc,
# as tests/test_segmentation.py::test_backbone_count_is_the_authors_minus_score_and_fc works out.
DETECTION_PARAMS = {'99': 13_335_296, '150': 21_665_792, '201': 41_290_944}
CLASSIFIER_PARAMS = {'99': 16_628_904, '150': 24_959_400, '201': 44_584_552}


def build_model(cfg):
    scope = cfg.default_scope
    init_default_scope(scope)
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    model_cfg.backbone.init_cfg = None  # pretrained files are not part of the test
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model_cfg)


def test_the_fixed_paths_exist():
    rel = [os.path.relpath(p, ROOT) for p in CONFIGS]
    for path in ['configs/mask_rcnn_fishnet150_fpn_1x_coco.py', 'configs/fishnet/fishnet99_8xb32_in1k.py',
                 'configs/fishnet/fishnet150_8xb32_in1k.py', 'configs/fishnet/fishnet201_8xb32_in1k.py']:
        assert path in rel


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_parses_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['mmfishnet']
    # configs/_base_/default_runtime_fishnet.py's hooks and the safe checkpoint hook: without them a NaN
    # loss is saved, a resume draws other random numbers, a wrong num_classes trains, a kill loses checkpoints,
    # a kill or preemption loses up to an epoch (the latest checkpoint, and the loops resuming mid-epoch), a
    # fast-path setting that cannot work compiles anyway
    assert [h['type'] for h in cfg.custom_hooks] == ['NonFiniteLossHook', 'RandomStateHook', 'NumClassesCheckHook',
                                                     'LatestCheckpointHook', 'FastPathHook']
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert cfg.train_cfg.type in ('ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop')
    backbone = cfg.model.backbone
    assert backbone.type == 'FishNet'
    model = build_model(cfg)
    arch = str(backbone.arch)
    # bare_first_shortcut (the converted FishNet-201 weights' network) has no 64-channel norm (weight, bias)
    params = sum(p.numel() for p in model.backbone.parameters()) + 2 * 64 * backbone.get('bare_first_shortcut', 0)
    if cfg.default_scope in ('mmdet', 'mmseg'):  # mmseg's UPerNet takes the detection backbone's outputs
        assert 'depth' not in backbone and 'style' not in backbone  # nothing of ResNet leaks in
        assert params == DETECTION_PARAMS[arch]
        if cfg.default_scope == 'mmdet':
            assert list(cfg.model.neck.in_channels) == list(model.backbone.out_channels)
        else:
            assert list(cfg.model.decode_head.in_channels) == list(model.backbone.out_channels)
            assert cfg.model.auxiliary_head.in_channels == \
                model.backbone.out_channels[cfg.model.auxiliary_head.in_index]
    else:
        assert params + sum(p.numel() for p in model.head.parameters()) == \
            CLASSIFIER_PARAMS[arch] - (1000 - cfg.model.head.num_classes) * 1057


def test_coco_configs_follow_the_1x_baselines():
    for path in CONFIGS:
        if path.endswith('_1x_coco.py'):
            cfg = Config.fromfile(path)
            assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 16
            assert cfg.train_cfg.max_epochs == 12 and cfg.optim_wrapper.optimizer.lr == 0.02
            assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
            assert cfg.model.backbone.frozen_stages == 1 and cfg.model.backbone.norm_eval


def test_imagenet_recipe():
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/fishnet/fishnet150_8xb32_in1k.py'))
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.1, 0.9, 1e-4)
    assert cfg.train_dataloader.batch_size * 8 == 256 == cfg.auto_scale_lr.base_batch_size
    assert cfg.param_scheduler.milestones == [30, 60, 90] and cfg.train_cfg.max_epochs == 100
    lighting = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'Lighting']
    assert lighting and lighting[0].alphastd == 0.1
    assert [t.type for t in cfg.test_dataloader.dataset.pipeline][1:3] == ['ResizeEdge', 'CenterCrop']
    long = Config.fromfile(os.path.join(ROOT, 'configs/fishnet/fishnet201_8xb32-lbs-coslr-200e_in1k.py'))
    assert long.train_cfg.max_epochs == 200 and long.param_scheduler.type == 'CosineAnnealingLR'
    assert long.model.head.loss.type == 'LabelSmoothLoss' and long.model.backbone.arch == '201'


def test_fishnet201_configs_build_the_network_of_its_weights():
    """Catches a FishNet-201 config that starts from (or evaluates) the authors' only FishNet-201 weights,
    fishnet201_ckpt_welltrain.tar, without bare_first_shortcut: the conversion does not load there, or, with
    a norm put in front of its bare shortcut conv, fine-tuning in training mode computes a function the
    authors never trained (#19, item 7)."""
    welltrain = [p for p in CONFIGS if '201' in os.path.basename(p) and (
        Config.fromfile(p).model.backbone.get('init_cfg') or 'lbs-coslr-200e' in p)]
    assert len(welltrain) == 5  # the two detectors, the two UPerNets and the 200-epoch ImageNet recipe
    for path in welltrain:
        assert Config.fromfile(path).model.backbone.get('bare_first_shortcut') is True, path


def test_user_command_without_coco_says_where_to_put_it(tmp_path):
    """Catches a detection config or tools/train.py that starts without its data and fails later (or
    never: the documented command must stop at once). Run from an empty directory, so that data/coco is
    missing even on a machine that has COCO in the checkout (where this would start a 12-epoch run)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools/train.py'),
                           os.path.join(ROOT, 'configs/mask_rcnn_fishnet150_fpn_1x_coco.py'), '--work-dir',
                           str(tmp_path / 'work')], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert 'data/coco/' in proc.stderr and 'does not exist' in proc.stderr and 'docs/detection.md' in proc.stderr
    assert 'Traceback' not in proc.stderr
