# Copyright (c) mmfishnet contributors. All rights reserved.
"""The GPU acceptance run: proves the CUDA path and measures it, in one call, within a time budget.

    bash tools/gpu_check.sh                      # on a GPU machine: stage A, then stage B if time is left
    bash tools/gpu_check.sh --small              # the same flow on CPU at tiny sizes (no CUDA checks)

Run through ``tools/gpu_check.sh``, which installs the OpenMMLab stack from the carried wheels first (see
its header). Each step prints ``PASS``/``FAIL``/``SKIP`` with its figure; everything goes to
``--out`` (default ``$OUT``, else ``work_dirs/gpu_check``): ``gpu_check.md`` (the report), ``gpu_check.log``
(every step's output) and the benchmark tables.

Stage A needs no compiled mmcv op: toy classifier trained with ``--amp`` and tested, kill + ``--resume``,
``dist_train.sh`` with NCCL + SyncBN, the numerical claims (channels-last, TF32, AMP, with_cp) and the
backbone benchmarks (ResNets from torchvision: mmdet's package imports mmcv's ops). Stage B needs mmcv
built with CUDA ops (``gpu_check.sh`` builds it in the background during stage A): RoIAlign/nms on CUDA
against CPU, the toy Mask R-CNN trained with ``--amp`` and evaluated, and the Mask R-CNN benchmark.
A step that would not finish within the budget is skipped and says what it would have needed.

``--only perf`` is the training-speed run (docs/training_speed.md): the numerics, RoIAlign/nms CUDA against
CPU, ``benchmarks/bench_train_speed.py`` and a Mask R-CNN iteration eager and with the compiled backbone and
neck. No benchmark runs while mmcv builds: with ``--only perf`` it is never built (carry ``.whl/prebuilt/``
for the mmcv rows), and in a full run the benchmarks wait for the background build to end.
"""
import argparse
import ast
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

CLS_CONFIG = 'configs/toy/fishnet99_1xb16_toy-cls.py'
DET_CONFIG = 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py'


class Check:
    """The run's state: time budget, results, and the log every step's output goes to."""

    def __init__(self, args):
        self.args, self.small = args, args.small
        self.start = args.t0 or time.time()  # gpu_check.sh's start: the budget includes the installs
        self.results = []  # (stage, step, status, figure, seconds)
        self.tables = []  # (title, markdown text)
        self.work = args.work_dir
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(args.out, exist_ok=True)
        self.log = open(osp.join(args.out, 'gpu_check.log'), 'a')
        self.device = 'cpu' if args.small else 'cuda'

    def left(self) -> float:
        return self.args.budget - (time.time() - self.start)

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + '\n')
        self.log.flush()

    def record(self, stage, step, status, figure='', seconds=0.0):
        self.results.append((stage, step, status, figure, seconds))
        self.say(f'[{time.time() - self.start:6.0f}s] {status:4s} {stage}/{step}: {figure} ({seconds:.0f} s)')

    def run(self, cmd, timeout, env=None, cwd=ROOT):
        """Run a command (list) with its output in the log; returns (returncode, output)."""
        full_env = dict(os.environ, PYTHONHASHSEED='0', **(env or {}))
        self.log.write(f'\n$ {" ".join(cmd)}\n')
        self.log.flush()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                                  timeout=max(timeout, 1))
            out = proc.stdout + proc.stderr
            code = proc.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
            out += f'\n[timed out after {timeout:.0f} s]'
            code = 124
        self.log.write(out[-20000:] + f'\n[exit code {code}]\n')
        self.log.flush()
        if not out.strip():
            out = f'no output, exit code {code}' + (' (killed by signal %d)' % -code if code < 0 else '')
        return code, out

    def step(self, stage, name, estimate, fn):
        """Run ``fn() -> (ok, figure)`` if ``estimate`` seconds are left, record PASS/FAIL/SKIP."""
        if self.left() < estimate:
            self.record(stage, name, 'SKIP', f'needs ~{estimate:.0f} s, {max(self.left(), 0):.0f} s left')
            return None
        t0 = time.time()
        try:
            ok, figure = fn()
        except Exception as e:  # a step's crash is its FAIL, the run goes on
            import traceback
            self.log.write(traceback.format_exc())
            ok, figure = False, f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'[:300]
        self.record(stage, name, 'PASS' if ok else 'FAIL', figure, time.time() - t0)
        return ok

    def tool(self, script, *args, timeout=None, env=None):
        return self.run([sys.executable, osp.join(ROOT, 'tools', script), *map(str, args)],
                        timeout=timeout or max(self.left() - 5, 1), env=env)


def last_error(out: str) -> str:
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.search(r'Error|error:|FAIL', ln)]
    return (errors[-1] if errors else lines[-1] if lines else 'no output').strip()[:300]


def metric(out: str, key: str):
    found = re.findall(rf"{re.escape(key)}[\"']?:\s*([0-9.]+)", out)
    return float(found[-1]) if found else None


# ----------------------------------------------------------------------------------------------- data

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


def child_config(c: Check, name: str, base: str, body: str) -> str:
    """A config in the work dir that inherits ``base`` and changes what ``body`` says (mmengine's
    ``--cfg-options`` cannot take a list of dicts such as a schedule)."""
    path = osp.join(c.work, name + '.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {osp.join(ROOT, base)!r}\n{body}\n')
    return path


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


# ------------------------------------------------------------------------------------------- stage A

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
    code, out = c.run([sys.executable, osp.abspath(__file__), '--numerics', '--device', c.device] +
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


def run_benchmark(c: Check, script: str, extra: list, md_name: str, title: str):
    """Run ``benchmarks/<script>`` with ``extra`` arguments and its table written to ``md_name`` in the output
    folder, then add the table to the report. Returns (output, None), or (None, the error) on a failure."""
    path = osp.join(c.args.out, md_name)
    code, out = c.run([sys.executable, osp.join(ROOT, 'benchmarks', script), *extra, '--markdown', path],
                      timeout=max(c.left() - 5, 1))
    if code != 0 or not osp.isfile(path):
        return None, last_error(out)
    c.tables.append((title, open(path).read()))
    return out, None


def bench_backbone(c: Check, amp: bool):
    if c.small:
        extra = ['--models', 'resnet50', 'fishnet99', '--size', '64', '--batch', '2', '--iters', '1',
                 '--rounds', '1', '--modes', 'train', '--resnet-impl', 'torchvision']
    else:
        extra = ['--batch', '32', '--iters', '10', '--warmup', '3', '--rounds', '2', '--modes', 'train',
                 '--variants', 'layout', '--resnet-impl', 'torchvision', '--in-process', '--device', 'cuda']
        extra += ['--amp'] if amp else []
    out, error = run_benchmark(c, 'bench_backbone.py', extra, f"bench_backbone_{'amp' if amp else 'fp32'}.md",
                               f'Backbone training step ({"AMP" if amp else "fp32/TF32"})')
    if error:
        return False, error
    rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"model"')]
    fish = {r['model']: r for r in rows}
    f150, r50 = fish.get('fishnet150') or fish.get('fishnet99'), fish.get('resnet50')
    return True, (f'{f150["model"]} {f150["train img/s"]:.0f} img/s vs ResNet-50 {r50["train img/s"]:.0f} img/s; '
                  f'ms/GFLOP ratio {f150["train ms/GFLOP"] / r50["train ms/GFLOP"]:.2f}, peak memory ratio '
                  f'{f150["train peak MiB"] / r50["train peak MiB"]:.2f}')


def bench_train_speed(c: Check):
    """benchmarks/bench_train_speed.py: the training-speed matrix, timed on the GPU (docs/training_speed.md)."""
    extra = ['--smoke'] if c.small else ['--device', 'cuda', '--budget', str(max(min(c.left() - 170, 300), 60))]
    out, error = run_benchmark(c, 'bench_train_speed.py', extra, 'bench_train_speed.md',
                               'Training speed (bench_train_speed.py)')
    if error:
        return False, error
    rows = [ast.literal_eval(ln) for ln in out.splitlines() if ln.startswith("{'model'")]
    best = {}
    for r in rows:
        if isinstance(r.get('img/s'), float) and r['precision'] in ('bf16', 'tf32'):
            key = r['model']
            if key not in best or r['img/s'] > best[key]['img/s']:
                best[key] = r
    return True, '; '.join(f"{m} {r['img/s']:.0f} img/s ({r['precision']}, b{r['batch']}, {r['compile']})"
                           for m, r in best.items()) or 'no row measured'


def wait_for_build_to_end(c: Check) -> None:
    """Benchmarks never run while mmcv builds: wait for a background build that is still going."""
    status = c.args.build_status
    if status and not osp.isfile(status) and osp.isfile(build_log(status)):
        c.say('[gpu_check] waiting for the mmcv build to end before benchmarking')
        while not osp.isfile(status) and c.left() > 60:
            time.sleep(5)


def build_log(status: str) -> str:
    return status[:-len('.status')] + '.log' if status.endswith('.status') else status + '.log'


# ------------------------------------------------------------------------------------------- stage B

def mmcv_ops(c: Check):
    code, out = c.run([sys.executable, '-X', 'faulthandler', osp.abspath(__file__), '--ops', '--device', c.device],
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
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
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


def bench_detector(c: Check):
    extra = (['--height', '128', '--width', '160', '--iters', '1', '--rounds', '1'] if c.small else
             ['--height', '800', '--width', '1216', '--iters', '5', '--rounds', '2', '--amp', '--device', 'cuda',
              '--in-process'])
    out, error = run_benchmark(c, 'bench_detector.py', extra, 'bench_detector_amp.md', 'Mask R-CNN training iteration')
    if error:
        return False, error
    rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"backbone"')]
    fish, res = rows[0], rows[1]
    return True, (f'iteration {fish["iteration s"] * 1000:.0f} ms vs ResNet-50 {res["iteration s"] * 1000:.0f} ms '
                  f'({fish["iteration s"] / res["iteration s"]:.2f}x; backbone FLOPs '
                  f'{fish["backbone GFLOPs (2 imgs)"] / res["backbone GFLOPs (2 imgs)"]:.2f}x), peak memory '
                  f'{fish["peak MiB"] / res["peak MiB"]:.2f}x')


def bench_detector_fast(c: Check):
    """A Mask R-CNN iteration with AMP (fp16: mmcv 2.1.0's RoIAlign has no bf16 kernel), eager and with backbone
    and neck compiled (the detection fast path)."""
    extra = (['--height', '128', '--width', '160', '--iters', '1', '--rounds', '1'] if c.small else
             ['--height', '800', '--width', '1216', '--iters', '5', '--rounds', '1', '--amp', '--compile-backbone',
              '--device', 'cuda', '--in-process'])
    out, error = run_benchmark(c, 'bench_detector.py', extra, 'bench_detector_fast.md',
                               'Mask R-CNN training iteration, AMP, eager and compiled backbone + neck')
    if error:
        return False, error
    rows = {r['backbone']: r for r in (json.loads(ln) for ln in out.splitlines() if ln.startswith('{"backbone"'))}
    figure = ', '.join(f"{name} {r['iteration s'] * 1000:.0f} ms" for name, r in rows.items())
    return True, figure


# ------------------------------------------------------------------------------------------- driver

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


def report(c: Check) -> str:
    import platform
    lines = ['# GPU acceptance run', '']
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU (small mode)'
        versions = f'torch {torch.__version__} (CUDA {torch.version.cuda}), Python {platform.python_version()}'
    except ImportError:
        gpu, versions = '?', '?'
    for mod in ('numpy', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmpretrain'):
        try:
            versions += f', {mod} {__import__(mod).__version__}'
        except Exception:  # noqa: BLE001  (mmdet refuses to import without the right mmcv)
            pass
    lines += [f'Device: {gpu}.', f'Software: {versions}.',
              f'Command: `bash tools/gpu_check.sh {" ".join(c.args.forwarded)}` '
              f'(budget {c.args.budget:.0f} s, run took {time.time() - c.start:.0f} s).', '',
              '| stage | step | result | figure | s |', '|---|---|---|---|---|']
    lines += [f'| {s} | {n} | {r} | {f} | {t:.0f} |' for s, n, r, f, t in c.results]
    for title, table in c.tables:
        lines += ['', f'## {title}', '', table.strip()]
    return '\n'.join(lines) + '\n'


STEPS = [  # (key for --only, stage, name, seconds it needs at least, function), run in this order
    ('data', 'A', 'toy data', 30, make_data),
    ('cls', 'A', 'toy classifier --amp + test', 60, train_cls_amp),
    ('resume', 'A', 'kill mid-epoch + --resume', 50, kill_and_resume),
    ('syncbn', 'A', 'dist_train NCCL + SyncBN', 40, nccl_syncbn),
    ('numerics', 'A', 'numerics: channels-last, TF32, AMP, with_cp', 30, numerics),
    ('bench-fp32', 'A', 'bench backbone fp32 (TF32)', 90, lambda c: bench_backbone(c, amp=False)),
    ('bench-amp', 'A', 'bench backbone AMP', 80, lambda c: bench_backbone(c, amp=True)),
    ('ops', 'B', 'mmcv RoIAlign/nms CUDA vs CPU', 20, mmcv_ops),
    ('det', 'B', 'toy Mask R-CNN --amp + COCO eval', 100, train_det_amp),
    ('bench-det', 'B', 'bench Mask R-CNN AMP', 50, bench_detector),
    ('perf', 'A', 'bench training speed (CUDA events)', 120, bench_train_speed),
    ('perf-det', 'B', 'bench Mask R-CNN AMP, compiled backbone + neck', 90, bench_detector_fast),
]
# --only perf: the training-speed run (docs/training_speed.md) with the two rows the first acceptance run lacks
ALIASES = {'perf': ['numerics', 'ops', 'perf', 'perf-det']}
BENCHMARKS = ('bench-fp32', 'bench-amp', 'perf', 'bench-det', 'perf-det')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--small', action='store_true', help='CPU, tiny sizes, no CUDA checks')
    parser.add_argument('--stages', default='AB', help='A, B or AB')
    parser.add_argument('--budget', type=float, default=540, help='seconds the whole run may take')
    parser.add_argument('--out', default=os.environ.get('OUT') or osp.join(ROOT, 'work_dirs', 'gpu_check'))
    parser.add_argument('--work-dir', default=None, help='training work dirs and toy data (not sent back)')
    parser.add_argument('--only', help='comma-separated keys of the steps to run (a rerun), of: ' +
                        ', '.join(step[0] for step in STEPS) + ' (the toy data is made when a training step runs); '
                        'perf = numerics,ops,perf,perf-det')
    parser.add_argument('--t0', type=float, help=argparse.SUPPRESS)
    parser.add_argument('--build-status', help='file the background mmcv build writes "EXITCODE SECONDS" to')
    parser.add_argument('--numerics', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--ops', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--device', default='cuda', help=argparse.SUPPRESS)
    args, forwarded = parser.parse_known_args()
    if args.numerics:
        print('NUMERICS ' + json.dumps(numerics_job(args.device, args.small)))
        return
    if args.ops:
        print('OPS ' + json.dumps(ops_job(args.device)))
        return
    args.forwarded = sys.argv[1:]
    args.work_dir = args.work_dir or osp.join('/tmp', 'gpu_check_work')
    c = Check(args)
    if not args.small:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('gpu_check: torch sees no CUDA device here; use --small to test the flow on CPU')
    c.say(f'gpu_check: budget {args.budget:.0f} s, stages {args.stages}, {"small (CPU)" if args.small else "CUDA"}')
    only = {k for key in args.only.split(',') for k in ALIASES.get(key, [key])} if args.only else None
    build_ok = None
    for key, stage, name, estimate, fn in STEPS:
        needs_data = not only or only & {'cls', 'resume', 'syncbn', 'det'}  # the toy trainings' data
        if stage not in args.stages or (only and key not in only and not (key == 'data' and needs_data)):
            continue
        if name == 'dist_train NCCL + SyncBN' and c.small:
            c.record(stage, name, 'SKIP', 'needs CUDA (small mode)')
            continue
        if stage == 'B' and build_ok is None:  # stage B needs the mmcv built in the background meanwhile
            build_ok = wait_for_build(c, reserve=170)
        if stage == 'B' and not build_ok:
            continue
        if key in BENCHMARKS:
            wait_for_build_to_end(c)
        c.step(stage, name, estimate, lambda fn=fn: fn(c))
    text = report(c)
    with open(osp.join(args.out, 'gpu_check.md'), 'w') as f:
        f.write(text)
    print('\n' + text)
    failed = [r for r in c.results if r[2] == 'FAIL']
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
