# Copyright (c) mmfishnet contributors. All rights reserved.
"""Shared pieces of the benchmark scripts: timing, peak memory, FLOPs, the machine's conv throughput and
Markdown tables. Every measurement of one kind runs in a fresh subprocess, so peak memory is its own."""
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def rss_mib() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, iters: int, warmup: int = 1, device: str = 'cpu') -> float:
    """Median seconds of ``fn()`` over ``iters`` runs after ``warmup`` runs."""
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
    return sorted(times)[len(times) // 2]


def forward_gflops(model, shape) -> float:
    """mmengine's count (one multiply-add = one FLOP) of one forward pass at ``shape`` (N, C, H, W)."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    model.eval()  # (mmdet's ResNet.train() returns None: do not chain)
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, torch.rand(*shape))
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


def run_isolated(script: str, args: dict) -> dict:
    """Run ``script --job JSON`` in a fresh interpreter and return the JSON it prints last."""
    proc = subprocess.run([sys.executable, script, '--job', json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f'{script} {args} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


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
