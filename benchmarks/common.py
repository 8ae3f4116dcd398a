# Copyright (c) mmfishnet contributors. All rights reserved.
"""Shared pieces of the benchmark scripts: timing, peak memory, FLOPs, the machine's conv throughput and
Markdown tables. Every measurement runs in a fresh subprocess, so its memory is its own.

Time: jobs of all models are run in interleaved rounds and each keeps its fastest round, so that the
machine's drift and other tenants' bursts do not favour one model (noise only ever adds time).

Peak memory of a step: the rise of the allocator's peak over what was allocated before the step. On
CUDA that is ``torch.cuda.max_memory_allocated()``. On CPU the memory job runs with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so every tensor is mapped on allocation and unmapped on
free and the process's resident set follows the live tensors; the kernel's high-water mark (reset
through ``/proc/self/clear_refs``) then gives the step's peak.
"""
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


# Environment of CPU memory jobs: tensors are mmapped and unmapped, so RSS follows the live allocations.
MEMORY_ENV = {'MALLOC_MMAP_THRESHOLD_': str(128 * 1024)}


def _status_mib(field: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'/proc/self/status has no {field}')


def step_peak_mib(step, device: str = 'cpu') -> float:
    """Peak memory allocated while running ``step()`` once, above what was allocated before it (MiB).
    On CPU it needs :data:`MEMORY_ENV` in the environment (see the module docstring)."""
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    if os.environ.get('MALLOC_MMAP_THRESHOLD_') != MEMORY_ENV['MALLOC_MMAP_THRESHOLD_']:
        raise RuntimeError('CPU memory jobs must run with MALLOC_MMAP_THRESHOLD_ set (run_isolated does it)')
    with open('/proc/self/clear_refs', 'w') as f:  # resets VmHWM to the current RSS
        f.write('5')
    base = _status_mib('VmRSS')
    step()
    return _status_mib('VmHWM') - base


def timed(fn, iters: int, warmup: int = 1, device: str = 'cpu') -> float:
    """Fastest of ``iters`` runs of ``fn()`` (seconds), after ``warmup`` runs."""
    import torch
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_step(step, kind: str, iters: int, device: str = 'cpu', warmup: int = 1) -> dict:
    """A job's measurement of ``step``: ``kind='time'`` gives ``seconds`` (see :func:`timed`),
    ``kind='memory'`` gives ``peak_mib`` after the warm-up (see :func:`step_peak_mib`)."""
    if kind == 'memory':
        for _ in range(warmup):
            step()
        return dict(seconds=0.0, peak_mib=step_peak_mib(step, device))
    return dict(seconds=timed(step, iters, warmup=warmup, device=device))


def forward_gflops(model, shape) -> float:
    """mmengine's count (one multiply-add = one FLOP) of one forward pass at ``shape`` (N, C, H, W)."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    model.eval()  # (mmdet's ResNet.train() returns None: do not chain)
    device = next(model.parameters()).device
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, torch.rand(*shape, device=device))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return analyzer.total() / 1e9


def conv_throughput(device: str = 'cpu', iters: int = 5) -> float:
    """GFLOP/s (multiply-adds) of a large dense 3x3 convolution, forward: the machine's ceiling."""
    import torch
    n, c, hw = 8, 256, 56
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(device)
    x = torch.rand(n, c, hw, hw, device=device)
    with torch.no_grad():
        seconds = timed(lambda: conv(x), iters, warmup=2, device=device)
    return n * c * c * 9 * hw * hw / seconds / 1e9


def set_tf32(device: str) -> None:
    """fp32 on CUDA as training code runs it on Ampere and newer: TF32 tensor cores for matrix products
    and convolutions (PyTorch's default for convolutions already; matmuls need asking)."""
    import torch
    if device == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def machine() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = f'{names[0]} x {len(names)}' if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return f'{cpu}; {gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads'


def header(script: str, argv, machine_note: str = '') -> str:
    """The first lines of a table: the machine (with ``machine_note``) and the command that made it."""
    args = ' '.join(sys.argv[1:] if argv is None else argv)
    return f'Machine: {machine()}{machine_note}.\nCommand: python benchmarks/{os.path.basename(script)} {args}\n'


# Set by a script's --in-process flag (CUDA only): jobs run in this process through this function.
_IN_PROCESS_JOB = None


def run_in_process(job_fn, device: str) -> None:
    """Run every later job in this process through ``job_fn`` instead of a fresh interpreter. Only on CUDA,
    where a step's memory is read from the allocator's own peak counter (on CPU the resident-set method
    needs a fresh process); it saves the seconds of start-up and CUDA initialisation each job costs."""
    global _IN_PROCESS_JOB
    if device != 'cuda':
        raise SystemExit('--in-process needs --device cuda (CPU memory jobs must run in a fresh process)')
    _IN_PROCESS_JOB = job_fn


def run_isolated(script: str, args: dict) -> dict:
    """Run ``script --job JSON`` in a fresh interpreter and return the JSON it prints last. Jobs with
    ``kind='memory'`` get :data:`MEMORY_ENV`. After :func:`run_in_process`, run the job here instead."""
    if _IN_PROCESS_JOB is not None:
        import gc

        import torch
        gc.collect()
        torch.cuda.empty_cache()
        return _IN_PROCESS_JOB(dict(args))
    env = dict(os.environ, **(MEMORY_ENV if args.get('kind') == 'memory' else {}))
    proc = subprocess.run([sys.executable, script, '--job', json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{script} {args} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_rounds(script: str, jobs: list, rounds: int) -> list:
    """Run every job ``rounds`` times, one round after another (interleaved), each in a fresh process;
    return, per job, the result of its fastest round."""
    best = [None] * len(jobs)
    for r in range(rounds):
        for i, args in enumerate(jobs):
            result = run_isolated(script, args)
            if best[i] is None or result['seconds'] < best[i]['seconds']:
                best[i] = result
            print(f'round {r + 1}/{rounds}: {args} -> {result["seconds"]:.3f} s', file=sys.stderr, flush=True)
    return best


def markdown(rows, columns) -> str:
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '|'.join('---' for _ in columns) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(_fmt(row.get(c, '')) for c in columns) + ' |')
    return '\n'.join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 100 else f'{value:.0f}'
    return str(value)


def emit(header: str, rows, columns, path=None) -> None:
    """Print ``header`` and the table; also write them to ``path`` as Markdown when given."""
    text = header + '\n' + markdown(rows, columns) + '\n'
    print(text)
    if path:
        with open(path, 'w') as f:
            f.write(text)
