# Copyright (c) mmfishnet contributors. All rights reserved.
"""Training speed on a GPU, measured on the GPU and not on the host: FishNet-99/150/201 against torchvision's
ResNet-50/101 under the same settings, in one process.

    python benchmarks/bench_train_speed.py --device cuda --markdown out.md --budget 300   # H200: ~5 min
    python benchmarks/bench_train_speed.py --smoke                    # CPU, tiny: every code path but CUDA's

``--smoke`` (what tests/test_bench_train_speed.py runs): 64x64, batch 2, 4 settings, FishNet with one unit
per stage (its rows say fishnet99), compile with dynamo's ``eager`` backend; its figures mean nothing.

A row is one setting: model, precision (``tf32``; ``bf16`` and ``fp16`` autocast, fp16 with a GradScaler),
batch, compile (``eager``; ``default``: ``torch.compile``; ``cudagraphs``: ``mode='reduce-overhead'``) and
``cudnn.benchmark``. Every model runs channels-last (weights and input), with SGD (momentum 0.9) and
``zero_grad(set_to_none=True)``. The settings run in priority order (the targets of docs/training_speed.md
first) until ``--budget`` seconds are spent; the rest are listed as skipped.

- Time: after the warm-up steps (the first of which compiles: its time is ``compile s``), ``--windows``
  windows of ``--steps`` back-to-back steps, each timed with CUDA events around the window; ``ms/step`` is
  the median window's time per step and ``spread`` (max - min) / median over the windows.
- Kernels: one step under PyTorch's profiler: GPU kernels run (``kernels``) and kernel launches the host
  issued (``launches``: cudaLaunchKernel and friends, one per CUDA-graph replay). On CPU: the top-level
  ATen ops (``kernels``), the work the host dispatches one by one.
- Peak: ``% peak`` is the step's rate in FLOP/s (training = 3 x forward; one multiply-add = 2 FLOP, the
  convention of tensor-core peaks; mmengine's FlopAnalyzer counts it as 1) over the dense tensor-core peak
  of that precision: stated (:data:`STATED_PEAK_TFLOPS`) and measured in the same run by a large GEMM.
- Load: the CPU's busy share and other processes on the GPU are read before timing; above
  ``--max-cpu-busy`` (or with another GPU process) the run refuses to time, and the figures are recorded.
- ``--breakdown``: GPU kernel time of one step by kind for the first setting of each model/compile pair.
"""
import argparse
import gc
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

MODELS = ['fishnet99', 'fishnet150', 'fishnet201', 'resnet50', 'resnet101']
PRECISIONS = ['tf32', 'bf16', 'fp16']
COMPILE_MODES = {'eager': None, 'default': dict(), 'cudagraphs': dict(mode='reduce-overhead')}
# Dense tensor-core peaks of an H100/H200 SXM (NVIDIA's datasheet, as device README H200.md quotes it: dense
# bf16 about 990 TFLOP/s; fp16 the same; tf32 half of it). Other GPUs: the measured GEMM column.
STATED_PEAK_TFLOPS = {'bf16': 989.4, 'fp16': 989.4, 'tf32': 494.7}
# Kinds of GPU kernel for --breakdown: (kind, pattern on the kernel's name); the first match wins.
KERNEL_KINDS = [
    ('inductor (fused)', r'^triton_'),
    ('conv (cuDNN)', r'conv|cudnn|implicit|dgrad|wgrad|fprop|bprop'),
    ('GEMM', r'gemm|cutlass|cublas'),
    ('batch norm', r'batch_norm|batchnorm|bn_|welford'),
    ('optimizer (foreach)', r'multi_tensor|foreach'),
    ('pooling', r'pool'),
    ('layout, copy, cast', r'copy|nchwToNhwc|nhwcToNchw|transpose|cast|convert'),
    ('reduction', r'reduce'),
    ('elementwise', r'elementwise|vectorized|unrolled'),
]


def plan(models, precisions, batches, compile_modes, smoke=False):
    """The settings, most important first: (model, precision, batch, compile, cudnn_benchmark)."""
    if smoke:  # each code path once: both model families, autocast with and without a GradScaler, compile
        wanted = [('fishnet99', 'bf16', 'eager', True), ('resnet50', 'tf32', 'eager', True),
                  ('fishnet99', 'fp16', 'eager', False), ('fishnet99', 'tf32', 'default', True)]
        return [(m, p, batches[0], c, b) for m, p, c, b in wanted if m in models and p in precisions
                and c in compile_modes]
    main, ref = ('fishnet150', 'resnet50')
    first = [m for m in (main, ref) if m in models]
    rows = []

    def add(*setting):
        if setting not in rows:
            rows.append(setting)

    bf16 = 'bf16' if 'bf16' in precisions else precisions[0]
    fast = [c for c in ('eager', 'cudagraphs') if c in compile_modes]
    for b in batches[:2]:  # the targets first: FishNet-150 vs ResNet-50, bf16, batch 32 then 128
        for c in fast:
            for m in first:
                add(m, bf16, b, c, True)
    for p in precisions:  # AMP never slower than TF32
        for m in models:
            add(m, p, batches[0], 'eager', True)
    for m in models:  # cudnn.benchmark off, as OpenMMLab's default
        add(m, bf16, batches[0], 'eager', False)
    for b in batches[1:]:
        for m in models:
            add(m, bf16, b, 'eager', True)
    for c in compile_modes:
        for m in models:
            add(m, bf16, batches[0], c, True)
    return rows


def machine_load(device: str, seconds: float = 0.5) -> dict:
    """The CPU's busy share over ``seconds`` (/proc/stat, all cores), the 1-minute load average, and the
    other processes holding the GPU (nvidia-smi), as found before timing."""
    def cpu_times():
        with open('/proc/stat') as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    idle0, total0 = cpu_times()
    time.sleep(seconds)
    idle1, total1 = cpu_times()
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    load = dict(cpu_busy=round(busy, 3), loadavg_1min=os.getloadavg()[0], cpus=os.cpu_count(), gpu_others=[])
    if device == 'cuda':
        try:
            out = subprocess.run(['nvidia-smi', '--query-compute-apps=pid,process_name', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=20).stdout
            load['gpu_others'] = [ln.strip() for ln in out.splitlines()
                                  if ln.strip() and ln.split(',')[0].strip() != str(os.getpid())]
        except (OSError, subprocess.TimeoutExpired):
            load['gpu_others'] = ['nvidia-smi not available']
    return load


def check_load(load: dict, max_cpu_busy: float) -> None:
    """Refuse to time on a busy machine: what else runs takes CPU time from launching kernels."""
    if load['cpu_busy'] > max_cpu_busy or [p for p in load['gpu_others'] if 'not available' not in p]:
        raise SystemExit(f"bench_train_speed: refusing to time on a busy machine: CPU {100 * load['cpu_busy']:.0f} % "
                         f"busy (limit {100 * max_cpu_busy:.0f} %), load average {load['loadavg_1min']:.1f} on "
                         f"{load['cpus']} CPUs, other GPU processes {load['gpu_others'] or 'none'}; stop them "
                         'or pass --max-cpu-busy')


def set_precision(precision: str, device: str, cudnn_benchmark: bool):
    """Global switches of a setting; returns the autocast dtype (None: no autocast)."""
    import torch
    tf32 = precision == 'tf32'
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    return {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision)


def build_model(name: str, smoke: bool):
    import torch
    from bench_backbone import build
    torch.manual_seed(0)
    if name.startswith('fishnet') and smoke:  # one unit per stage: the code paths at a fraction of the cost
        from mmfishnet.models import FishNet
        sys.path.insert(0, os.path.join(common.ROOT, 'tools', 'analysis_tools'))
        from get_flops import classifier
        return classifier(FishNet(arch=dict(res_blocks=[1] * 10, transfer_blocks=[1] * 6), out_indices=(11, ),
                                  channels_last=True), 1056)
    return build(name, channels_last=True if name.startswith('fishnet') else None, resnet_impl='torchvision')


def make_step(model, precision, batch, size, compile_mode, device):
    """One training step (forward, loss, backward, SGD step) of ``model`` in the setting's precision."""
    import torch
    import torch.nn.functional as F
    model = model.to(device).to(memory_format=torch.channels_last).train()
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (batch, ), device=device)
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device, enabled=precision == 'fp16')
    options = COMPILE_MODES[compile_mode]
    if options is not None and device != 'cuda':
        options = dict(options, backend='eager')  # --smoke: dynamo's capture only (inductor's C++ is minutes)
    forward = model if options is None else torch.compile(model, dynamic=False, **options)
    cudagraphs = compile_mode == 'cudagraphs' and device == 'cuda'

    def step():
        if cudagraphs:  # a new iteration: the graphs may reuse the last step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = F.cross_entropy(forward(x), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def time_windows(step, device, windows: int, steps: int) -> list:
    """Seconds per step of each window of ``steps`` back-to-back steps (CUDA events on a GPU)."""
    import torch
    per_step = []
    for _ in range(windows):
        if device == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(steps):
                step()
            end.record()
            end.synchronize()
            per_step.append(start.elapsed_time(end) / 1000 / steps)
        else:
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            per_step.append((time.perf_counter() - t0) / steps)
    return per_step


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def kernel_kind(name: str) -> str:
    return next((kind for kind, pattern in KERNEL_KINDS if re.search(pattern, name, re.I)), 'other')


def profile_step(step, device) -> dict:
    """Kernels and launches of one step; on a GPU also the kernel time by kind (ms)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    events = prof.events()
    if device != 'cuda':
        ops = [e for e in events if e.name.startswith('aten::') and
               (e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::'))]
        return dict(kernels=len(ops), launches=len(ops), kinds={})
    kernels = [e for e in events if e.device_type == DeviceType.CUDA]
    launches = [e for e in events if e.device_type == DeviceType.CPU and
                re.match(r'(cuda|cu)(LaunchKernel|LaunchKernelEx|GraphLaunch|LaunchCooperativeKernel)', e.name)]
    kinds = {}
    for e in kernels:
        kind = kernel_kind(e.name)
        kinds[kind] = kinds.get(kind, 0.0) + e.time_range.elapsed_us() / 1000  # the kernel's own duration, ms
    return dict(kernels=len(kernels), launches=len(launches), kinds=kinds)


def gemm_tflops(precision: str, device: str, n: int) -> float:
    """Measured dense matrix-product rate (TFLOP/s, 2 FLOP per multiply-add) in ``precision``."""
    import torch
    set_precision(precision, device, False)
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(precision, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    seconds = median(time_windows(lambda: a @ b, device, windows=3, steps=10 if device == 'cuda' else 2))
    return 2 * n ** 3 / seconds / 1e12


def measure(setting, args, gflops: dict, peaks: dict) -> dict:
    import torch
    model_name, precision, batch, compile_mode, cudnn_benchmark = setting
    row = dict(model=model_name, precision=precision, batch=batch, compile=compile_mode,
               **{'cudnn.benchmark': 'on' if cudnn_benchmark else 'off'})
    set_precision(precision, args.device, cudnn_benchmark)
    model = build_model(model_name, args.smoke)
    if model_name not in gflops:
        gflops[model_name] = common.forward_gflops(model, (1, 3, args.size, args.size))
    try:
        step = make_step(model, precision, batch, args.size, compile_mode, args.device)
        sync(args.device)
        t0 = time.perf_counter()
        step()
        sync(args.device)
        row['compile s'] = time.perf_counter() - t0 if compile_mode != 'eager' else 0.0
        for _ in range(args.warmup - 1):
            step()
        if args.device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        times = time_windows(step, args.device, args.windows, args.steps)
        seconds = median(times)
        row.update({'ms/step': 1000 * seconds, 'spread %': 100 * (max(times) - min(times)) / seconds,
                    'img/s': batch / seconds})
        if args.device == 'cuda':
            row['peak GiB'] = torch.cuda.max_memory_allocated() / 2**30
        tflops = batch / seconds * 6 * gflops[model_name] / 1000  # 3 x forward, 2 FLOP per multiply-add
        row['TFLOP/s'] = tflops
        if precision in STATED_PEAK_TFLOPS:
            row['% stated peak'] = 100 * tflops / STATED_PEAK_TFLOPS[precision]
        row['% GEMM peak'] = 100 * tflops / peaks[precision]
        profiled = profile_step(step, args.device)
        row['kernels'], row['launches'] = profiled['kernels'], profiled['launches']
        row['kinds'] = profiled['kinds']
    except torch.cuda.OutOfMemoryError:
        row['ms/step'] = 'OOM'
    finally:
        del model
        gc.collect()
        torch._dynamo.reset()
        if args.device == 'cuda':
            torch.cuda.empty_cache()
    return row


COLUMNS = ['model', 'precision', 'batch', 'compile', 'cudnn.benchmark', 'img/s', 'ms/step', 'spread %',
           'compile s', 'peak GiB', 'kernels', 'launches', 'TFLOP/s', '% stated peak', '% GEMM peak', 'ms/GFLOP vs R50']


def add_ratios(rows):
    """``ms/GFLOP vs R50``: each row's time per forward GFLOP over ResNet-50's in the same setting."""
    ref = {(r['precision'], r['batch'], r['compile'], r['cudnn.benchmark']): r for r in rows
           if r['model'] == 'resnet50' and isinstance(r.get('ms/step'), float)}
    for r in rows:
        base = ref.get((r['precision'], r['batch'], r['compile'], r['cudnn.benchmark']))
        if base and isinstance(r.get('TFLOP/s'), float):
            r['ms/GFLOP vs R50'] = base['TFLOP/s'] / r['TFLOP/s']


def breakdown_table(rows) -> str:
    """GPU kernel time of one step by kind, one column per (model, compile) pair's first measured row."""
    seen = {}
    for r in rows:
        if r.get('kinds') and (r['model'], r['compile']) not in seen:
            seen[(r['model'], r['compile'])] = r
    if not seen:
        return ''
    kinds = [k for k, _ in KERNEL_KINDS] + ['other']
    columns = ['kernel kind'] + [f"{m} {c} ({r['precision']}, b{r['batch']})" for (m, c), r in seen.items()]
    table = []
    for kind in kinds + ['total']:
        line = {'kernel kind': kind + ' (ms)'}
        for col, r in zip(columns[1:], seen.values()):
            line[col] = sum(r['kinds'].values()) if kind == 'total' else r['kinds'].get(kind, 0.0)
        table.append(line)
    return common.markdown(table, columns)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--smoke', action='store_true', help='CPU, tiny models and sizes: the code paths only')
    parser.add_argument('--models', nargs='+', default=MODELS, choices=MODELS)
    parser.add_argument('--precisions', nargs='+', default=PRECISIONS, choices=PRECISIONS)
    parser.add_argument('--batches', nargs='+', type=int, default=[32, 128, 256])
    parser.add_argument('--compile', nargs='+', default=list(COMPILE_MODES), choices=list(COMPILE_MODES))
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=5, help='untimed steps (the first compiles)')
    parser.add_argument('--windows', type=int, default=5, help='timed windows (median and spread over them)')
    parser.add_argument('--steps', type=int, default=10, help='back-to-back steps per window')
    parser.add_argument('--gemm-size', type=int, default=8192, help='side of the GEMM that measures the peak')
    parser.add_argument('--budget', type=float, default=float('inf'), help='seconds; later settings are skipped')
    parser.add_argument('--max-cpu-busy', type=float, default=0.25,
                        help='refuse to time when the CPUs are busier than this share (0-1) before the run')
    parser.add_argument('--markdown', help='write the tables to this file')
    args = parser.parse_args(argv)
    if args.smoke:
        if args.device != 'cpu':
            parser.error('--smoke runs on the CPU')
        args.models = [m for m in args.models if m in ('fishnet99', 'resnet50')]
        args.batches, args.size, args.warmup, args.windows, args.steps, args.gemm_size = [2], 64, 1, 2, 1, 256
        args.compile = [c for c in args.compile if c != 'cudagraphs'] or ['eager']
    start = time.time()
    load = machine_load(args.device)
    check_load(load, args.max_cpu_busy)
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('bench_train_speed: --device cuda but torch sees no GPU')
    peaks = {p: gemm_tflops(p, args.device, args.gemm_size) for p in args.precisions}
    gflops, rows, skipped = {}, [], []
    for setting in plan(args.models, args.precisions, args.batches, args.compile, args.smoke):
        if time.time() - start > args.budget:
            skipped.append(setting)
            continue
        rows.append(measure(setting, args, gflops, peaks))
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[-1].items() if k != 'kinds'},
              flush=True)
    add_ratios(rows)
    load_after = machine_load(args.device)
    gemm = ', '.join(f'{p} {v:.1f}' for p, v in peaks.items())
    header = common.header(__file__, argv, f'. Load before: CPU {100 * load["cpu_busy"]:.0f} % busy, load average '
                           f'{load["loadavg_1min"]:.1f}, other GPU processes: {load["gpu_others"] or "none"}; after: '
                           f'CPU {100 * load_after["cpu_busy"]:.0f} % busy')
    header += (f'Training step, {args.size}x{args.size}, channels-last weights and input, SGD, '
               f'zero_grad(set_to_none=True). Stated dense peaks (TFLOP/s): '
               f'{", ".join(f"{p} {v}" for p, v in STATED_PEAK_TFLOPS.items())}; measured by a {args.gemm_size}^3 '
               f'GEMM in this run: {gemm}. Forward GFLOPs (multiply-adds): '
               f'{", ".join(f"{m} {g:.2f}" for m, g in gflops.items())}.\n')
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    text = header + '\n' + common.markdown(rows, columns) + '\n'
    if skipped:
        text += (f'\nSkipped (budget {args.budget:.0f} s spent): '
                 + '; '.join(' '.join(map(str, s)) for s in skipped) + '\n')
    breakdown = breakdown_table(rows)
    if breakdown:
        text += '\nGPU kernel time of one step, by kind:\n\n' + breakdown + '\n'
    print(text)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(text)
    return rows


if __name__ == '__main__':
    main()
