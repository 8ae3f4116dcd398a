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


def cpu_tool_env(**extra):
    """The environment of a tool a test runs: this interpreter, a fixed hash seed and no GPU. The tool runs
    test the CPU path (gloo ranks, results exact on CPU), so on a machine with GPUs they hide them
    (``CUDA_VISIBLE_DEVICES=''``) instead of taking the NCCL path with several ranks on one GPU. An ``extra``
    value of None removes that variable."""
    env = dict(os.environ, PYTHON=sys.executable, PYTHONHASHSEED='0', CUDA_VISIBLE_DEVICES='')
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def fake_command(folder, name, script):
    """An executable bash script ``folder/name`` (a stand-in for srun, scontrol, python, ...); returns ``folder``."""
    path = folder / name
    path.write_text('#!/usr/bin/env bash\n' + script)
    path.chmod(0o755)
    return str(folder)


def run_tool(*args, env=None, timeout=900, tool_env=None):
    """Run a tools/ script (or a shell script) with this interpreter from the repo root, on CPU."""
    full_env = cpu_tool_env(**(tool_env or {}))
    if args[0].endswith('.sh'):
        cmd = ['bash', os.path.join(ROOT, args[0]), *args[1:]]
    else:
        cmd = [sys.executable, os.path.join(ROOT, args[0]), *args[1:]]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)


def train_then_test(cfg, work, last, *test_args):
    """tools/train.py ``cfg`` into ``work``, then tools/test.py on its last checkpoint, whose name must end
    with ``last``. Returns the checkpoint's path and the test run."""
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith(last) and os.path.isfile(ckpt), ckpt
    proc = run_tool('tools/test.py', cfg, ckpt, '--work-dir', str(work), *test_args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ckpt, proc


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
# SGD lr 0.005, the toy config's optimizer until 2026-12-04: the tests' one- or two-epoch detectors from random
# weights were measured with it; the config's AdamW at this lr diverges and predicts nothing (no mAP to check)
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1))
log_processor = dict(window_size=1)
{extra}
"""
    return write_config(tmp_path / name, 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py', body)


def toy_cls_data(tmp_path_factory, name, num_train, num_val, size=32):
    """A toy classification dataset (4 shape classes) in a new tmp folder."""
    from mmfishnet.datasets import make_toy_classification
    root = tmp_path_factory.mktemp(name)
    make_toy_classification(str(root), num_train=num_train, num_val=num_val, size=size)
    return root


def save_toy_classifier(path, arch='99', extra=None):
    """Save a converted-layout FishNet classifier checkpoint with random weights and the toy configs' 4
    classes, as tools/test.py and a ``Pretrained`` init_cfg (prefix ``backbone.``) load it. Returns the
    backbone whose weights were saved."""
    import torch
    from mmfishnet.models import FishNet
    backbone = FishNet(arch=arch, out_indices=(11, ))
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state.update({'head.fc.weight': torch.zeros(4, 1056), 'head.fc.bias': torch.zeros(4)})
    torch.save({'state_dict': state, 'meta': {'arch': f'fishnet{arch}'}, **(extra or {})}, path)
    return backbone


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
