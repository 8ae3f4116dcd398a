"""Shared helpers of the training tests: tiny generated datasets and derived configs in tmp dirs."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_config(path, base, body):
    """A config that inherits ``base`` (a path relative to the repo) and overrides ``body``."""
    with open(path, 'w') as f:
        f.write(f"_base_ = {os.path.join(ROOT, base)!r}\n{body}\n")
    return str(path)


def run_tool(*args, env=None, timeout=900, tool_env=None):
    """Run a tools/ script (or a shell script) with this interpreter from the repo root."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONHASHSEED='0', **(tool_env or {}))
    if args[0].endswith('.sh'):
        cmd = ['bash', os.path.join(ROOT, args[0]), *args[1:]]
    else:
        cmd = [sys.executable, os.path.join(ROOT, args[0]), *args[1:]]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def printed_metrics(proc):
    """The metrics dict tools/test.py prints last (a Python literal)."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


def tiny_cls_config(tmp_path, data_root, epochs=2, extra=''):
    body = f"""
data_root = {str(data_root)!r}
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={epochs})]
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1))
{extra}
"""
    return write_config(tmp_path / 'cls.py', 'configs/toy/fishnet99_1xb16_toy-cls.py', body)


def tiny_det_config(tmp_path, data_root, epochs=1, batch_size=2, extra='', name='det.py'):
    body = f"""
data_root = {str(data_root) + '/'!r}
train_dataloader = dict(batch_size={batch_size}, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
model = dict(backbone=dict(init_cfg=None))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={epochs})]
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
optim_wrapper = dict(optimizer=dict(lr=0.005))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1))
log_processor = dict(window_size=1)
{extra}
"""
    return write_config(tmp_path / name, 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py', body)


def build_classifier(arch, num_classes=1000, **backbone):
    """mmpretrain's ImageClassifier as the ImageNet configs build it (the authors' classifier), with
    FishNet's score feature by default; ``backbone`` overrides FishNet's arguments (e.g. out_indices)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    backbone = dict(dict(type='FishNet', arch=arch, out_indices=(11, )), **backbone)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(dict(
            type='ImageClassifier',
            backbone=backbone,
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=1056)))
