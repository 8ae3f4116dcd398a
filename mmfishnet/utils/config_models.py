# Copyright (c) mmfishnet contributors. All rights reserved.
"""Config -> model for the tools that work outside a Runner (image demo, ONNX export, FLOPs).

The config's ``default_scope`` names the library that builds it: ``mmpretrain`` (classification),
``mmdet`` (detection) or ``mmseg`` (segmentation).
"""
import os.path as osp

from .errors import UserError

TASKS = dict(mmpretrain='classification', mmdet='detection', mmseg='segmentation')


def read_config(path: str, cfg_options: dict = None):
    """``Config.fromfile`` with ``--cfg-options`` merged; a missing file is a one-line error."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise UserError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
        expand_vis_backends(cfg)
    return cfg


def expand_vis_backends(cfg) -> None:
    """Let ``--cfg-options`` name visualizer backends by type, which it cannot write as dicts:
    ``visualizer.vis_backends=[LocalVisBackend,TensorboardVisBackend]`` becomes
    ``[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]`` (TensorBoard logging on, the
    local scalars.json and the curves drawn from it kept)."""
    visualizer = cfg.get('visualizer')
    backends = visualizer.get('vis_backends') if isinstance(visualizer, dict) else None
    if isinstance(backends, str):
        backends = [backends]
    if isinstance(backends, (list, tuple)) and any(isinstance(b, str) for b in backends):
        visualizer['vis_backends'] = [dict(type=b) if isinstance(b, str) else b for b in backends]


def config_task(cfg, path: str = 'the config') -> str:
    """'classification', 'detection' or 'segmentation', from the config's default_scope."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise UserError(f"{path} has default_scope={scope!r}; expected one of {sorted(TASKS)} (an mmpretrain, "
                        'mmdet or mmseg config)')
    if scope == 'mmseg':
        try:
            import mmseg  # noqa: F401
        except ImportError:
            raise UserError(f'{path} is an mmseg config but mmseg is not installed (pip install mmsegmentation)')
    return TASKS[scope]


def build_model(cfg, part: str = 'model'):
    """Build ``cfg.model`` (``part='model'``) or only its backbone (``part='backbone'``) in the config's
    scope, in eval mode, with the weights its modules' constructors give (FishNet: the authors'
    initialisation; ``init_weights`` is not run and no pretrained file is read)."""
    from mmengine.registry import DefaultScope, init_default_scope
    if part not in ('model', 'backbone'):
        raise ValueError(f"part must be 'model' or 'backbone', got {part!r}")
    config_task(cfg)
    scope = cfg.default_scope
    init_default_scope(scope)
    model_cfg = cfg.model.backbone if part == 'backbone' else cfg.model
    model_cfg = model_cfg.copy()
    if part == 'backbone':
        model_cfg.init_cfg = None
    else:
        skip_backbone_pretrained(model_cfg)
    with DefaultScope.overwrite_default_scope(scope):
        model = _scope_models(scope).build(model_cfg)
    return model.eval()


def skip_backbone_pretrained(model_cfg) -> None:
    """Set the backbone's ``init_cfg`` (its own pretrained weights) of ``model_cfg`` to None, in place: where
    a checkpoint of the whole model is loaded, that file is not needed (nor read; it need not exist here)."""
    if model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None


def _scope_models(scope: str):
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS
    elif scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmseg.registry import MODELS
    return MODELS


def load_weights(model, checkpoint: str, part: str = 'model') -> None:
    """Load a checkpoint of the whole model (a Runner's or a converted one) strictly: into the whole model,
    or its ``backbone.`` part into a backbone. A missing, unreadable, official or ill-fitting file is a
    one-line error."""
    from .config_checks import check_checkpoint
    weights = check_checkpoint(checkpoint)
    if part == 'backbone':
        weights = {k[len('backbone.'):]: v for k, v in weights.items() if k.startswith('backbone.')}
    check_fits(model, weights, checkpoint)
    model.load_state_dict({k: weights[k] for k in model.state_dict()}, strict=True)


def check_fits(model, weights: dict, checkpoint: str) -> None:
    """Every tensor of ``model`` must be in ``weights`` with its shape, and ``weights`` must hold nothing
    more for the stages the model builds: FishNet-99's tensors are a subset of FishNet-150's with the same
    shapes, so a check of missing keys alone would take a FishNet-150 checkpoint for a FishNet-99 model.
    (A backbone's checkpoint may hold stages it does not build, e.g. a classifier's ``score``.)"""
    from .checkpoint import describe_mismatch
    problem = describe_mismatch(model.state_dict(), weights, extra_in=getattr(model, 'built_stages', 'all'))
    if problem:
        raise UserError(f'{checkpoint} does not fit the model of this config: {problem}. Is it a checkpoint '
                        'of another model or arch?')


def classifier_logits(classifier):
    """An mmpretrain ``ImageClassifier`` as a one-input module that returns its logits (``mode='tensor'``,
    no softmax): what the FLOP counter measures and the ONNX exporter exports."""
    import torch.nn as nn

    class Logits(nn.Module):

        def __init__(self):
            super().__init__()
            self.classifier = classifier

        def forward(self, x):
            return self.classifier(x, mode='tensor')

    return Logits().eval()
