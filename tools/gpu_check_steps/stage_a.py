# Copyright (c) mmfishnet contributors. All rights reserved.
"""Stage A of the GPU acceptance run: the steps that need no compiled mmcv op (toy data, the toy classifier
trained with ``--amp`` and tested, kill + ``--resume``, ``dist_train.sh`` with NCCL + SyncBN, the numerical
claims). The benchmarks are in :mod:`perf`."""
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

from .base import CLS_CONFIG, GPU_CHECK, ROOT, Check, child_config, last_error, metric


def make_data(c: Check):
    # the toy COCO with 40 val images (the demo's default is 1000, for a stable figure): the detection check
    # needs the CUDA ops to run and a sane mAP, and every val image costs device time twice
    tiny = ['--num-train', '3', '--num-val', '2']
    for only, sizes in (('cls', tiny if c.small else []), ('coco', tiny if c.small else ['--num-val', '40'])):
        code, out = c.tool('data/make_toy_data.py', '--out-dir', osp.join(c.work, 'data'), '--only', only, *sizes,
                           timeout=300)
        if code != 0:
            return False, last_error(out)
    return True, 'toy classification + COCO data'

def cls_config(c: Check, name: str, epochs: int, interval: int, extra: str = '') -> str:
    """The toy classifier on the run's data; ``epochs`` other than the recipe's 16 keep a constant lr."""
    data = osp.join(c.work, 'data', 'toy_cls')
    body = f"""
data_root = {data!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval={interval}, max_keep_ckpts=-1))
"""
    if epochs != 16:
        body += f"param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end={epochs})]\n"
    return child_config(c, name, CLS_CONFIG, body + extra)

def train_cls_amp(c: Check):
    work = osp.join(c.work, 'toy_cls')
    epochs = 2 if c.small else 16
    amp = [] if c.small else ['--amp']
    config = cls_config(c, 'toy_cls', epochs, interval=epochs if c.small else 4)
    code, out = c.tool('train.py', config, '--work-dir', work, *amp)
    if code != 0:
        return False, 'train: ' + last_error(out)
    amp_used = 'AmpOptimWrapper' in open(osp.join(work, 'toy_cls.py')).read()
    ckpt = open(osp.join(work, 'last_checkpoint')).read().strip()
    code, out = c.tool('test.py', config, ckpt, '--work-dir', work)
    top1 = metric(out, 'accuracy/top1')
    if code != 0 or top1 is None:
        return False, 'test: ' + last_error(out)
    c.cls_ckpt = ckpt
    need = 0 if c.small else 60.0  # 4 classes: chance is 25 %
    return top1 >= need and (amp_used or c.small), (f'top-1 {top1:.1f} % after {epochs} epochs '
                                                   f'({"AMP" if amp_used else "fp32"}; pass: >= {need:.0f} %)')

def kill_and_resume(c: Check):
    """Train, SIGKILL mid-epoch 3 (after epoch_2.pth), resume with --resume: it must continue at epoch 2."""
    work = osp.join(c.work, 'resume')
    config = cls_config(c, "resume", epochs=4, interval=1)
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work]
    c.log.write(f'\n$ {" ".join(cmd)}  (killed mid-epoch 3)\n')
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, PYTHONHASHSEED='0'))
    deadline, killed = time.time() + max(c.left() - 60, 10), None
    for line in child.stdout:
        c.log.write(line)
        if re.search(r'Epoch\(train\)\s+\[3\]\[\s*\d+/', line):
            child.send_signal(signal.SIGKILL)
            killed = line.strip()
            break
        if time.time() > deadline:
            child.kill()
            break
    child.wait()
    if killed is None:
        return False, 'the first run never reached epoch 3'
    code, out = c.tool('train.py', config, '--work-dir', work, '--resume')
    resumed = re.search(r'resumed epoch: (\d+), iter: (\d+)', out)
    if code != 0 or not resumed:
        return False, 'resume: ' + last_error(out)
    finished = osp.isfile(osp.join(work, 'epoch_4.pth'))
    # killed after a log line of epoch 3: the newest complete checkpoint is epoch 2's (3's if the kill was late)
    return finished and resumed.group(1) in ('2', '3'), (
        f'killed in epoch 3 ({killed[:40]}...), resumed at epoch {resumed.group(1)} (iter {resumed.group(2)}), '
        f'ran to epoch 4')

def nccl_syncbn(c: Check):
    work = osp.join(c.work, 'syncbn')
    config = cls_config(c, 'syncbn', epochs=1, interval=1)
    env = dict(PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000))
    code, out = c.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, '1', '--work-dir', work,
                       '--cfg-options', 'model.backbone.norm_cfg.type=SyncBN', 'model.backbone.norm_eval=False'],
                      timeout=max(c.left() - 5, 1), env=env)
    nccl = "'backend': 'nccl'" in out or "backend='nccl'" in out
    syncbn = "type='SyncBN'" in out  # the config the run logs
    if code != 0:
        return False, last_error(out)
    # one process: torch's SyncBatchNorm normalises locally (it all-reduces only for world size > 1)
    return nccl and syncbn, (f'exit 0; NCCL process group and DDP: {nccl}; SyncBN in the run config: {syncbn} '
                             f'(1 process: SyncBatchNorm computes locally)')

def numerics(c: Check):
    code, out = c.run([sys.executable, GPU_CHECK, '--numerics', '--device', c.device] +
                      (['--small'] if c.small else []), timeout=max(c.left() - 5, 1))
    found = re.findall(r'^NUMERICS (.*)$', out, re.M)
    if code != 0 or not found:
        return False, last_error(out)
    result = json.loads(found[-1])
    c.tables.append(('Numerics (FishNet outputs against a float64 CPU reference)', result['table']))
    return result['ok'], result['summary']

def numerics_job(device: str, small: bool) -> dict:
    """Relative errors ||out - ref|| / ||ref|| of FishNet outputs against float64 on the CPU."""
    import torch

    from mmfishnet.models import FishNet
    arch, size, batch = ('99', 64, 2) if small else ('150', 224, 4)
    torch.manual_seed(0)
    ref_model = FishNet(arch=arch, out_indices=(7, 8, 9, 10, 11), channels_last=False).double()
    x = torch.rand(batch, 3, size, size, dtype=torch.float64)
    # BN statistics of the data itself, as a trained network has them: with arbitrary statistics the eval-mode
    # activations of a random network grow layer by layer (seen on the H200, 2026-11-26: up to 1.9e5 in the
    # score feature, beyond float16's 65504, so AMP overflowed where no trained network would)
    for m in ref_model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        ref_model.train()(x)
        ref = ref_model.eval()(x)

    def rel(outs):  # the worst output; a non-finite one counts as infinitely wrong (max() would skip a NaN)
        errs = [float((o.double().cpu() - r).norm() / r.norm()) for o, r in zip(outs, ref)]
        return max(e if e == e else float('inf') for e in errs)

    rows, ok = [], True
    limits = dict(fp32=1e-4, tf32=5e-3, amp=float('inf'))
    for layout in (True, False):
        model = FishNet(arch=arch, out_indices=(7, 8, 9, 10, 11), channels_last=layout)
        model.load_state_dict({k: v.float() for k, v in ref_model.state_dict().items()})
        model = model.to(device).eval()
        xd = x.float().to(device)
        modes = [('fp32', False, False)] + ([('tf32', True, False), ('amp', True, True)] if device == 'cuda' else [])
        for name, tf32, amp in modes:
            if device == 'cuda':
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cuda.matmul.allow_tf32 = tf32
            with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.float16, enabled=amp):
                outs = model(xd)
            err = rel(outs)
            finite = all(bool(torch.isfinite(o).all()) for o in outs)
            # fp16: only finiteness passes or fails. A random network amplifies rounding layer by layer (on the
            # CPU, bf16 autocast gives 0.3-0.8 relative error on FishNet-150 with the calibrated statistics), so
            # the error is reported, not judged; AMP is proven by the --amp trainings reaching their metrics
            passed = finite and (name == 'amp' or err <= limits[name])
            ok &= passed
            rows.append(dict(layout='channels-last' if layout else 'NCHW', precision=name, rel_err=err,
                             limit=limits[name], ok=passed, finite=finite))
    # with_cp: same outputs and gradients as without (training mode, fp32)
    grads = {}
    for cp in (False, True):
        torch.manual_seed(0)
        model = FishNet(arch=arch, out_indices=(11, ), with_cp=cp).to(device).train()
        model.load_state_dict({k: v.float() for k, v in ref_model.state_dict().items() if k in model.state_dict()},
                              strict=False)
        if device == 'cuda':
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        out = model(x.float().to(device))[0]
        out.square().mean().backward()
        grads[cp] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    cp_err = float((grads[True] - grads[False]).norm() / grads[False].norm())
    ok &= cp_err <= 1e-4
    rows.append(dict(layout='default', precision='with_cp grads vs without (fp32)', rel_err=cp_err, limit=1e-4,
                     ok=cp_err <= 1e-4, finite=bool(torch.isfinite(grads[True]).all())))
    lines = ['| layout | precision | rel. error | limit | all finite | ok |', '|---|---|---|---|---|---|']
    lines += [f'| {r["layout"]} | {r["precision"]} | {r["rel_err"]:.2e} | '
              f'{"finite" if r["limit"] == float("inf") else format(r["limit"], ".0e")} | {r["finite"]} | {r["ok"]} |'
              for r in rows]
    worst = {}
    for r in rows:
        worst[r['precision']] = max(worst.get(r['precision'], 0.0), r['rel_err'])
    summary = f'FishNet-{arch} {batch}x{size}x{size}, relative errors (worst layout): ' + ', '.join(
        f'{k} {v:.1e}' for k, v in worst.items()) + ' (limits: fp32 1e-4, tf32 5e-3; fp16 must be finite)'
    return dict(ok=ok, summary=summary, table='\n'.join(lines))
