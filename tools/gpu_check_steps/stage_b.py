# Copyright (c) mmfishnet contributors. All rights reserved.
"""Stage B of the GPU acceptance run: the steps that need mmcv built with CUDA ops (waiting for the
background build, RoIAlign/nms on CUDA against the CPU, the toy Mask R-CNN trained with ``--amp`` and
evaluated). The detector benchmarks are in :mod:`perf`."""
import json
import os
import os.path as osp
import re
import sys
import time

from .base import DET_CONFIG, GPU_CHECK, ROOT, Check, build_log, child_config, last_error, metric


def wait_for_build(c: Check, reserve: float) -> bool:
    """Wait for the background mmcv build (gpu_check.sh writes its exit code to the status file)."""
    status = c.args.build_status
    if not status:
        return c.small
    if not osp.isfile(status) and not osp.isfile(build_log(status)):
        c.record('B', 'mmcv CUDA build', 'SKIP', 'no mmcv with CUDA ops: none carried in .whl/prebuilt/ and none '
                 'built (a run with --only perf never builds mmcv, so that no build runs beside the benchmarks)')
        return False
    while not osp.isfile(status) and c.left() > reserve:
        time.sleep(5)
    if not osp.isfile(status):
        c.record('B', 'mmcv CUDA build', 'SKIP', f'still building after {time.time() - c.start:.0f} s of the run')
        return False
    code, seconds = open(status).read().split()
    ok = code == '0'
    full = os.environ.get('GPU_CHECK_FULL_MMCV')
    if ok and full:  # from here on the subprocesses import the mmcv with CUDA ops
        paths = [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p and not p.endswith('-mmcv-lite')]
        os.environ['PYTHONPATH'] = os.pathsep.join([full] + paths)
    arch = os.environ.get('TORCH_CUDA_ARCH_LIST', '')
    built = (f'mmcv 2.1.0 with CUDA ops built in {float(seconds):.0f} s ({arch})' if float(seconds) else
             f'mmcv 2.1.0 with CUDA ops ({arch}) reused from an earlier run\'s build')
    c.record('B', 'mmcv CUDA build', 'PASS' if ok else 'FAIL', built + ('' if ok else '; see mmcv_build.log'),
             float(seconds))
    return ok

def mmcv_ops(c: Check):
    code, out = c.run([sys.executable, '-X', 'faulthandler', GPU_CHECK, '--ops', '--device', c.device],
                      timeout=max(c.left() - 5, 1))
    found = re.findall(r'^OPS (.*)$', out, re.M)
    if code != 0 or not found:
        return False, last_error(out)
    result = json.loads(found[-1])
    return result['ok'], result['summary']

def ops_job(device: str) -> dict:
    import torch
    import mmcv
    from mmcv.ops import RoIAlign, nms
    torch.manual_seed(0)
    feats = torch.rand(2, 16, 50, 60)
    xy = torch.rand(64, 2) * torch.tensor([50., 40.])
    wh = torch.rand(64, 2) * 20 + 1
    rois = torch.cat([torch.randint(0, 2, (64, 1)).float(), xy, xy + wh], 1)
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(64)
    align = RoIAlign((7, 7), spatial_scale=1.0, sampling_ratio=2, aligned=True)
    cpu_out = align(feats, rois)
    cpu_keep = nms(boxes, scores, 0.5)[1]
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    from check_mmcv import compiled_cuda_version  # asks mmcv in a child: it segfaults for nvcc 13 builds
    info = f'mmcv {mmcv.__version__}: CUDA ops compiled with CUDA {compiled_cuda_version()}'
    if device != 'cuda':
        return dict(ok=True, summary=f'{info}; CPU ops ran (no CUDA comparison in small mode)')
    print('CPU ops ran; CUDA RoIAlign next', flush=True)
    gpu_out = align(feats.cuda(), rois.cuda()).cpu()
    print('CUDA RoIAlign ran; CUDA nms next', flush=True)
    gpu_keep = nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu()
    err = float((gpu_out - cpu_out).abs().max())
    same_keep = torch.equal(gpu_keep.sort().values, cpu_keep.sort().values)
    ok = err <= 1e-5 and same_keep
    return dict(ok=ok, summary=f'{info}; RoIAlign CUDA vs CPU max abs diff {err:.1e} (<= 1e-5), nms keeps the '
                               f'same {len(cpu_keep)} boxes: {same_keep}')

def train_det_amp(c: Check):
    work = osp.join(c.work, 'toy_det')
    data = osp.join(c.work, 'data', 'toy_coco') + '/'
    epochs = 1 if c.small else 8  # 160 images / batch 4 = 40 iterations an epoch
    ckpt = getattr(c, 'cls_ckpt', None)
    init = f"dict(type='Pretrained', checkpoint={ckpt!r}, prefix='backbone.')" if ckpt else 'None'
    config = child_config(c, 'toy_det', DET_CONFIG, f"""
data_root = {data!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
model = dict(backbone=dict(init_cfg={init}))
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end={epochs}, by_epoch=True, milestones=[{max(epochs - 2, 1)}], gamma=0.1)]
default_hooks = dict(checkpoint=dict(interval={epochs}))
""")
    amp = [] if c.small else ['--amp']
    code, out = c.tool('train.py', config, '--work-dir', work, *amp)
    if code != 0:
        return False, 'train: ' + last_error(out)
    last = open(osp.join(work, 'last_checkpoint')).read().strip()
    code, out = c.tool('test.py', config, last, '--work-dir', work)
    bbox, segm = metric(out, 'coco/bbox_mAP'), metric(out, 'coco/segm_mAP')
    if code != 0 or bbox is None:
        return False, 'test: ' + last_error(out)
    need = 0.0 if c.small else 0.1
    return bbox >= need, (f'{"320 iterations with AMP" if not c.small else "a few iterations (fp32)"}: bbox mAP '
                          f'{bbox:.3f}, segm mAP {segm:.3f} on the val images (pass: bbox >= {need})')
