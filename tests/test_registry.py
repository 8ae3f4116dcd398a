import torch
from mmengine.registry import DefaultScope

from mmfishnet.models import FishNet


def test_builds_under_mmdet_scope():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(dict(type='FishNet', arch='99', out_indices=(10, )))
    assert isinstance(model, FishNet)


def test_builds_under_mmpretrain_scope():
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='FishNet', arch='99', out_indices=(11, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=1056)))
    assert isinstance(classifier.backbone, FishNet)
    assert sum(p.numel() for p in classifier.parameters()) == 16_628_904
    classifier.eval()
    with torch.no_grad():
        scores = classifier(torch.rand(1, 3, 64, 64), mode='tensor')
    assert scores.shape == (1, 1000)


def test_builds_under_mmseg_scope():
    """The package docstring's claim for MMSegmentation: mmseg's registry falls back to the root one, so
    the backbone builds under ``default_scope='mmseg'`` (catches FishNet registered only in mmdet's or
    mmpretrain's registry, or mmseg's registry not reaching the root)."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(dict(type='FishNet', arch='99', out_indices=(10, )))
    assert isinstance(model, FishNet)


def test_registered_once_in_the_root_registry():
    from mmengine.registry import MODELS as ROOT
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as PRE
    from mmseg.registry import MODELS as SEG
    assert ROOT.get('FishNet') is FishNet
    assert all('FishNet' not in registry.module_dict for registry in (DET, PRE, SEG))
