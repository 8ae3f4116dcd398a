# Copyright (c) mmfishnet contributors. All rights reserved.
"""Training speed on a GPU, measured on the GPU and not on the host: FishNet-99/150/201 against torchvision's
ResNet-50/101 under the same settings, in one process.

    python benchmarks/bench_train_speed.py --device cuda --markdown out.md --budget 240 --deadline 260
    python benchmarks/bench_train_speed.py --smoke                    # CPU, tiny: every code path but CUDA's

``--smoke`` (what tests/test_bench_train_speed.py runs): 64x64, batch 2, 4 settings, FishNet with one unit
per stage (its rows say fishnet99), compile with dynamo's ``eager`` backend; its figures mean nothing.

A row is one setting: model, precision (``tf32``; ``bf16`` and ``fp16`` autocast, fp16 with a GradScaler),
batch, compile (``eager``; ``default``: ``torch.compile``; ``cudagraphs``: ``mode='reduce-overhead'``) and
``cudnn.benchmark``. Every model runs channels-last (weights and input), with SGD (momentum 0.9) and
``zero_grad(set_to_none=True)``. The order and the budget are ``train_speed_plan.py``'s: the targets of
docs/training_speed.md first; a row starts only if its estimated time (its compile included) fits in what is
left of ``--budget``; the rest are listed as skipped.

Two phases, so that no timing runs after a profiler session (CUPTI is not always torn down after one: torch
sets ``TEARDOWN_CUPTI=0`` when it compiles with CUDA graphs unless its CUDA allows CUPTI's lazy re-init,
``torch/__init__.py`` and ``torch/profiler/profiler.py``; pytorch/pytorch#144455):

1. Timing, row by row. After the warm-up steps (the first compiles: its time is ``compile s``), ``--windows``
   windows of ``--steps`` back-to-back steps, each timed with CUDA events around the window; ``ms/step`` is the
   median window's time per step and ``spread`` (max - min) / median over the windows. Memory per row: the
   allocator's peaks since the row started (``peak alloc GiB``, ``peak reserved GiB``: warm-up, compile,
   graph recording and timed steps) and ``device GiB``, the device memory in use after the timed steps above
   what was in use before the row (``torch.cuda.mem_get_info``). CUDA-graph replays do not call the
   allocator, but the graphs' private pool is reserved through it while they are recorded: compare CUDA-graph
   and eager rows by ``peak reserved GiB``; ``device GiB`` also counts what lives outside the allocator (the
   graph executables, library handles).
2. Profiling, after every timing, in the time left (``--profile-reserve`` is kept for it): each measured row
   is built again and one step after its warm-up is profiled. ``kernels``: GPU kernels run; ``launches``:
   kernel launches the host issued (cudaLaunchKernel, cuLaunchKernel and the like; one per CUDA-graph replay,
   ``cudaGraphLaunch``); ``copies``: memcpy/memset on the GPU, listed apart. User annotations that the
   profiler mirrors on the GPU ("Optimizer.step#SGD.step", "Torch-Compiled Region", ``ProfilerStep*``) are no
   kernels. On CPU: the top-level ATen ops (``kernels``), the work the host dispatches one by one.

- Peak: ``% peak`` is the step's rate in FLOP/s (training = 3 x forward; one multiply-add = 2 FLOP, the
  convention of tensor-core peaks; mmengine's FlopAnalyzer counts it as 1) over the dense tensor-core peak
  of that precision: stated (:data:`STATED_PEAK_TFLOPS`) and measured in the same run by a large GEMM.
- Load: the CPU's busy share and other processes on the GPU are read before timing; above
  ``--max-cpu-busy`` (or with another GPU process) the run refuses to time, and the figures are recorded.
- Failures stay in their row: an exception (out of memory, an inductor or CUDA-graph error) is the row's
  ``error`` (its first line) and the next row runs. The Markdown and a JSON of every row (``--json``; the
  versions of torch, CUDA, the driver, the GPU, the date and the load) are rewritten after each row, so a
  run stopped by SIGTERM or its ``--deadline`` (the row in progress says so) or killed leaves what it measured.
- The kernel time of one profiled step by kind, per model and compile mode.
"""
import argparse
import gc
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import train_speed_plan as planner  # noqa: E402

MODELS = ['fishnet99', 'fishnet150', 'fishnet201', 'resnet50', 'resnet101']
PRECISIONS = ['tf32', 'bf16', 'fp16']
COMPILE_MODES = {'eager': None, 'default': dict(), 'cudagraphs': dict(mode='reduce-overhead')}
# Dense tensor-core peaks of an H100/H200 SXM (NVIDIA's datasheet, as device README H200.md quotes it: dense
# bf16 about 990 TFLOP/s; fp16 the same; tf32 half of it). Other GPUs: the measured GEMM column.
STATED_PEAK_TFLOPS = {'bf16': 989.4, 'fp16': 989.4, 'tf32': 494.7}
# Kinds of GPU kernel for the breakdown: (kind, pattern on the kernel's name); the first match wins.
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
COPY_KIND = 'memcpy / memset (not kernels)'
# Host calls that launch GPU work (runtime and driver API, as CUPTI names them; a _v2-style suffix allowed)
LAUNCH_CALL = re.compile(r'^(cuda|cu)(LaunchKernel(ExC?|_ptsz|Ex)?|LaunchCooperativeKernel|GraphLaunch)(_v\d+)?$')
COPY_CALL = re.compile(r'^(cuda|cu)Mem(cpy|set)')
COPY_ON_GPU = re.compile(r'^Mem(cpy|set)\b')


def plan(models, precisions, batches, compile_modes, smoke=False):
    """The settings, most important first (``train_speed_plan.settings``)."""
    return planner.settings(models, precisions, batches, compile_modes, smoke)


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


def count_events(events) -> dict:
    """What one profiled GPU step ran, from the profiler's events (pure: tests feed it constructed events).

    - ``kernels``: GPU-side events that are kernels: not the user annotations the profiler mirrors on the
      GPU ("Optimizer.step#SGD.step", "Torch-Compiled Region", ``ProfilerStep*``: ``is_user_annotation``, or a
      GPU event named as a host-side event, for a torch that lacks the flag), not memcpy/memset;
    - ``copies``: memcpy/memset on the GPU; ``launches``: host calls that launch kernels or CUDA graphs, a call
      made inside another (a driver call under a runtime call) not counted again; ``copy calls``: host
      memcpy/memset calls;
    - ``kinds``: milliseconds of kernel time by kind (:data:`KERNEL_KINDS`) and of copies (:data:`COPY_KIND`),
      each event once (annotations, which span kernels, are left out)."""
    from torch.autograd import DeviceType
    host = [e for e in events if e.device_type == DeviceType.CPU]
    host_names = {e.name for e in host if not LAUNCH_CALL.match(e.name) and not COPY_CALL.match(e.name)}
    kernels, copies = [], []
    for e in events:
        if e.device_type != DeviceType.CUDA:
            continue
        activity = getattr(e, 'activity_type', None) or ''
        if getattr(e, 'is_user_annotation', False) or 'annotation' in activity or e.name in host_names:
            continue
        (copies if COPY_ON_GPU.match(e.name) or activity in ('gpu_memcpy', 'gpu_memset') else kernels).append(e)
    calls = sorted((e for e in host if LAUNCH_CALL.match(e.name)), key=lambda e: (e.thread, e.time_range.start,
                                                                                  -e.time_range.end))
    launches, outer = 0, {}
    for e in calls:  # sorted by start, the enclosing call first: a call inside the last outer one is nested
        last = outer.get(e.thread)
        if last is not None and e.time_range.start >= last.start and e.time_range.end <= last.end:
            continue
        outer[e.thread] = e.time_range
        launches += 1
    kinds = {}
    for e in kernels:
        kind = kernel_kind(e.name)
        kinds[kind] = kinds.get(kind, 0.0) + e.time_range.elapsed_us() / 1000  # the kernel's own duration, ms
    if copies:
        kinds[COPY_KIND] = sum(e.time_range.elapsed_us() for e in copies) / 1000
    return dict(kernels=len(kernels), launches=launches, copies=len(copies),
                **{'copy calls': sum(1 for e in host if COPY_CALL.match(e.name))}, kinds=kinds)


def cpu_ops(events) -> int:
    """The top-level ATen ops of a CPU step: the work the host dispatches one by one (an op called inside
    another, or under an annotation's span only, counts once)."""
    return sum(1 for e in events if e.name.startswith('aten::') and
               (e.cpu_parent is None or not e.cpu_parent.name.startswith('aten::')))


def profile_step(step, device) -> dict:
    """Kernels, launches and copies of one step (:func:`count_events`); on CPU the top-level ATen ops."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    events = prof.events()
    if device != 'cuda':
        ops = cpu_ops(events)
        return dict(kernels=ops, launches=ops, kinds={})
    return count_events(events)


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


def cleanup(device) -> None:
    """Free what a row left: its model, compiled graphs and CUDA-graph pools. A failure here (a CUDA error
    left by the row) is printed, not raised: the row already says what failed."""
    import torch
    try:
        gc.collect()
        torch._dynamo.reset()
        if device == 'cuda':
            from torch._inductor.cudagraph_trees import reset_cudagraph_trees
            reset_cudagraph_trees()
            gc.collect()
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    except Exception as e:  # noqa: BLE001
        print(f'bench_train_speed: cleanup after the row failed: {common.first_line(e)}', file=sys.stderr, flush=True)


def new_row(setting) -> dict:
    model_name, precision, batch, compile_mode, cudnn_benchmark = setting
    return dict(model=model_name, precision=precision, batch=batch, compile=compile_mode,
                **{'cudnn.benchmark': 'on' if cudnn_benchmark else 'off'})


def planner_setting(row: dict) -> tuple:
    return row['model'], row['precision'], row['batch'], row['compile'], row['cudnn.benchmark'] == 'on'


def guarded(row: dict, key: str, fn) -> None:
    """Run ``fn()``; an exception becomes ``row[key]`` (its first line), a stop is recorded and raised on."""
    try:
        fn()
    except common.Stopped as e:
        row[key] = f'stopped ({e})'
        raise
    except Exception as e:  # noqa: BLE001  (an inductor, CUDA-graph or out-of-memory error stays in its row)
        row[key] = common.first_line(e)


def measure(row: dict, args, gflops: dict, peaks: dict, fail: bool = False) -> dict:
    """Phase 1: time the setting of ``row`` (see the module docstring) into it; every failure stays in the
    row. ``fail``: a planted failure after the warm-up (tests)."""
    import torch
    model_name, precision, batch, compile_mode, cudnn_benchmark = planner_setting(row)
    t_row = time.perf_counter()
    cuda = args.device == 'cuda'

    def run():
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            free_before = torch.cuda.mem_get_info()[0]
        set_precision(precision, args.device, cudnn_benchmark)
        model = build_model(model_name, args.smoke)
        if model_name not in gflops:
            gflops[model_name] = common.forward_gflops(model, (1, 3, args.size, args.size))
        step = make_step(model, precision, batch, args.size, compile_mode, args.device)
        sync(args.device)
        t0 = time.perf_counter()
        step()
        sync(args.device)
        row['compile s'] = time.perf_counter() - t0 if compile_mode != 'eager' else 0.0
        for _ in range(args.warmup - 1):
            step()
        if fail:
            raise RuntimeError('planted failure (--fail-row)\nsecond line')
        times = time_windows(step, args.device, args.windows, args.steps)
        seconds = median(times)
        row.update({'ms/step': 1000 * seconds, 'spread %': 100 * (max(times) - min(times)) / seconds,
                    'img/s': batch / seconds})
        if cuda:
            row['peak alloc GiB'] = torch.cuda.max_memory_allocated() / 2**30
            row['peak reserved GiB'] = torch.cuda.max_memory_reserved() / 2**30
            row['device GiB'] = (free_before - torch.cuda.mem_get_info()[0]) / 2**30
        tflops = batch / seconds * 6 * gflops[model_name] / 1000  # 3 x forward, 2 FLOP per multiply-add
        row['TFLOP/s'] = tflops
        if precision in STATED_PEAK_TFLOPS:
            row['% stated peak'] = 100 * tflops / STATED_PEAK_TFLOPS[precision]
        if isinstance(peaks.get(precision), float):
            row['% GEMM peak'] = 100 * tflops / peaks[precision]

    try:
        guarded(row, 'error', run)
    finally:
        cleanup(args.device)
        row['row s'] = time.perf_counter() - t_row
    return row


def profile_row(row: dict, args) -> None:
    """Phase 2: build the row's setting again and profile one step after its warm-up (kernels, launches,
    copies and the kernel time by kind into ``row``; a failure into ``row['profile']``)."""
    t0 = time.perf_counter()

    def run():
        set_precision(row['precision'], args.device, row['cudnn.benchmark'] == 'on')
        step = make_step(build_model(row['model'], args.smoke), row['precision'], row['batch'], args.size,
                         row['compile'], args.device)
        for _ in range(max(args.warmup, 1)):  # the first step compiles: the profiled one runs compiled
            step()
        profiled = profile_step(step, args.device)
        row['kernels'], row['launches'] = profiled['kernels'], profiled['launches']
        if args.device == 'cuda':
            row['copies'] = profiled['copies']
        row['kinds'] = profiled['kinds']

    try:
        guarded(row, 'profile', run)
    finally:
        cleanup(args.device)
        row['profile s'] = time.perf_counter() - t0


COLUMNS = ['model', 'precision', 'batch', 'compile', 'cudnn.benchmark', 'img/s', 'ms/step', 'spread %',
           'compile s', 'peak alloc GiB', 'peak reserved GiB', 'device GiB', 'kernels', 'launches', 'copies',
           'TFLOP/s', '% stated peak', '% GEMM peak', 'ms/GFLOP vs R50', 'row s', 'profile s', 'error', 'profile']


def add_ratios(rows):
    """``ms/GFLOP vs R50``: each row's time per forward GFLOP over ResNet-50's in the same setting."""
    ref = {(r['precision'], r['batch'], r['compile'], r['cudnn.benchmark']): r for r in rows
           if r['model'] == 'resnet50' and isinstance(r.get('TFLOP/s'), float)}
    for r in rows:
        base = ref.get((r['precision'], r['batch'], r['compile'], r['cudnn.benchmark']))
        if base and isinstance(r.get('TFLOP/s'), float):
            r['ms/GFLOP vs R50'] = base['TFLOP/s'] / r['TFLOP/s']


def breakdown_table(rows) -> str:
    """GPU kernel time of one step by kind, one column per (model, compile) pair's first profiled row."""
    seen = {}
    for r in rows:
        if r.get('kinds') and (r['model'], r['compile']) not in seen:
            seen[(r['model'], r['compile'])] = r
    if not seen:
        return ''
    kinds = [k for k, _ in KERNEL_KINDS] + ['other']
    columns = ['kernel kind'] + [f"{m} {c} ({r['precision']}, b{r['batch']})" for (m, c), r in seen.items()]
    table = []
    for kind in kinds + ['total (kernels)', COPY_KIND]:
        line = {'kernel kind': kind + ' (ms)'}
        for col, r in zip(columns[1:], seen.values()):
            kernel_ms = sum(v for k, v in r['kinds'].items() if k != COPY_KIND)
            line[col] = kernel_ms if kind == 'total (kernels)' else r['kinds'].get(kind, 0.0)
        table.append(line)
    return common.markdown(table, columns)


def render(state: dict, argv) -> str:
    """The Markdown of the run so far: the header (versions, load, GEMM peaks), the rows, the skipped
    settings and the kernel breakdown."""
    args = state['args']
    env, load = state['environment'], state['load_before']
    header = common.header(__file__, argv) + common.environment_line(env) + '\n'
    header += f'Load before timing: {common.load_line(load)}'
    header += f"; after: {common.load_line(state['load_after'])}.\n" if state.get('load_after') else '.\n'
    gemm = ', '.join(f'{p} {v:.1f}' if isinstance(v, float) else f'{p} {v}' for p, v in state['gemm'].items())
    header += (f"Training step, {args['size']}x{args['size']}, channels-last weights and input, SGD, "
               f'zero_grad(set_to_none=True). Stated dense peaks (TFLOP/s): '
               f'{", ".join(f"{p} {v}" for p, v in STATED_PEAK_TFLOPS.items())}; measured by a '
               f"{args['gemm_size']}^3 GEMM in this run: {gemm or 'not yet'}. Forward GFLOPs (multiply-adds): "
               f"{', '.join(f'{m} {g:.2f}' for m, g in state['gflops'].items()) or 'none yet'}.\n")
    if state.get('stopped'):
        header += f"**Stopped early ({state['stopped']})**: the rows below are what was measured.\n"
    rows = state['rows']
    columns = [c for c in COLUMNS if any(c in r for r in rows)]
    text = header + '\n' + (common.markdown(rows, columns) if rows else 'No row measured.') + '\n'
    if state['skipped']:
        text += f"\nNot run (budget {args['budget']:.0f} s): {planner.settings_text(state['skipped'])}\n"
    breakdown = breakdown_table(rows)
    if breakdown:
        text += '\nGPU kernel time of one profiled step, by kind:\n\n' + breakdown + '\n'
    return text


def load_previous(path) -> list:
    """The rows of an earlier run's JSON (for the estimates), or none."""
    import json
    if not path or not os.path.isfile(path):
        return []
    with open(path) as f:
        return [r for r in json.load(f).get('rows', []) if isinstance(r, dict) and 'model' in r]


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
    parser.add_argument('--budget', type=float, default=float('inf'),
                        help='seconds for the timing and profiling phases; a row starts only if its estimate fits')
    parser.add_argument('--deadline', type=float, default=float('inf'),
                        help='seconds after which the run stops wherever it is and writes its tables')
    parser.add_argument('--profile-reserve', type=float, default=None,
                        help='seconds of --budget kept for the profiles (default: 25 on CUDA, 0 on CPU)')
    parser.add_argument('--previous', help="an earlier run's JSON: its measured times replace the estimates")
    parser.add_argument('--max-cpu-busy', type=float, default=0.25,
                        help='refuse to time when the CPUs are busier than this share (0-1) before the run')
    parser.add_argument('--fail-row', type=int, help=argparse.SUPPRESS)  # tests: row N (0-based) raises
    parser.add_argument('--markdown', help='write the tables to this file (rewritten after every row)')
    parser.add_argument('--json', help='write every row and the run\'s versions to this file (default: next to '
                        '--markdown, .json)')
    args = parser.parse_args(argv)
    if args.smoke:
        if args.device != 'cpu':
            parser.error('--smoke runs on the CPU')
        args.models = [m for m in args.models if m in ('fishnet99', 'resnet50')]
        args.batches, args.size, args.warmup, args.windows, args.steps, args.gemm_size = [2], 64, 1, 2, 1, 256
        args.compile = [c for c in args.compile if c != 'cudagraphs'] or ['eager']
    if args.json is None and args.markdown:
        args.json = os.path.splitext(args.markdown)[0] + '.json'
    with common.stop_on_signals(args.deadline):
        return run_phases(args, argv)


def run_phases(args, argv) -> list:
    """Both phases (see the module docstring); returns the rows."""
    reserve = args.profile_reserve if args.profile_reserve is not None else (25.0 if args.device == 'cuda' else 0.0)
    start = time.time()
    load = common.machine_load(args.device)
    common.check_load(load, args.max_cpu_busy, 'bench_train_speed')
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('bench_train_speed: --device cuda but torch sees no GPU')
    state = dict(args={k: v for k, v in vars(args).items()}, environment=common.environment(args.device),
                 load_before=load, gemm={}, gflops={}, rows=[], skipped=[], stopped=None)

    def write():
        data = dict(state, skipped=[(planner.setting_key(s), why) for s, why in state['skipped']])
        common.write_results(render(state, argv), data, args.markdown, args.json)

    previous = load_previous(args.previous)
    n_steps = planner.steps_per_row(args.warmup, args.windows, args.steps)
    pending = plan(args.models, args.precisions, args.batches, args.compile, args.smoke)
    try:
        for p in args.precisions:
            gemm_row = {}
            guarded(gemm_row, 'error', lambda p=p: gemm_row.update(v=gemm_tflops(p, args.device, args.gemm_size)))
            state['gemm'][p] = gemm_row.get('v', gemm_row.get('error'))
        write()
        while pending:  # phase 1: timing
            left = args.budget - (time.time() - start) - reserve
            setting, passed = planner.next_setting(
                pending, left, lambda s: planner.estimate(s, n_steps, state['rows'], previous))
            state['skipped'] += passed
            if setting is None:
                break
            pending = pending[pending.index(setting) + 1:]
            row = new_row(setting)
            state['rows'].append(row)  # first: a stop during the row leaves it in the tables, saying so
            measure(row, args, state['gflops'], state['gemm'], fail=args.fail_row == len(state['rows']) - 1)
            add_ratios(state['rows'])
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != 'kinds'},
                  flush=True)
            write()
        state['load_after'] = common.machine_load(args.device)
        write()
        for row in state['rows']:  # phase 2: profiles, in priority order, in the time left
            if 'error' in row:
                continue
            need = planner.estimate(planner_setting(row), n_steps, state['rows'], previous)['profile']
            if args.budget - (time.time() - start) < need:
                row['profile'] = f'not profiled (needs ~{need:.0f} s)'
                continue
            profile_row(row, args)
            write()
    except common.Stopped as e:
        state['stopped'] = str(e)
    finally:
        state['skipped'] += [(s, 'not reached') for s in pending]
        pending = []
        write()
    text = render(state, argv)
    print(text)
    return state['rows']


if __name__ == '__main__':
    main()
