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
import contextlib
import datetime
import json
import os
import platform
import signal
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


@contextlib.contextmanager
def uncompiled(model):
    """``model`` with the in-place compilation of its modules (``nn.Module.compile``, as ``compile_modules``
    does) set aside, and ``torch.compile``'s wrapper unwrapped: mmengine's FlopAnalyzer traces with
    ``torch.jit``, which dynamo refuses on a compiled module ("Detected that you are using FX to torch.jit.trace
    a dynamo-optimized function")."""
    model = getattr(model, '_orig_mod', model)
    saved = [(m, m._compiled_call_impl) for m in model.modules() if getattr(m, '_compiled_call_impl', None)]
    for m, _ in saved:
        m._compiled_call_impl = None
    try:
        yield model
    finally:
        for m, impl in saved:
            m._compiled_call_impl = impl


def forward_gflops(model, shape) -> float:
    """mmengine's count (one multiply-add = one FLOP) of one forward pass at ``shape`` (N, C, H, W); a
    compiled model is counted uncompiled (:func:`uncompiled`). The model's training mode is restored after."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    with uncompiled(model) as plain:
        training = plain.training
        plain.eval()  # (mmdet's ResNet.train() returns None: do not chain)
        device = next(plain.parameters()).device
        try:
            with torch.no_grad():
                analyzer = FlopAnalyzer(plain, torch.rand(*shape, device=device))
                analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                return analyzer.total() / 1e9
        finally:
            plain.train(training)


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
        torch._dynamo.reset()  # a job's compiled modules share Module._call_impl's cache with the next job's
        torch.cuda.empty_cache()
        return _IN_PROCESS_JOB(dict(args))
    env = dict(os.environ, **(MEMORY_ENV if args.get('kind') == 'memory' else {}))
    proc = subprocess.run([sys.executable, script, '--job', json.dumps(args)], capture_output=True, text=True,
                          cwd=ROOT, env=env)
    if proc.returncode != 0:  # the whole error on stderr (the log), its last line in the exception (the table)
        print(f'{script} {args} failed:\n{proc.stderr[-3000:]}', file=sys.stderr, flush=True)
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        raise RuntimeError(f'job failed (exit code {proc.returncode}): {lines[-1] if lines else "no output"}')
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


# --- what a GPU run records with its figures, and how it survives a failure or a kill ----------------------
def environment(device: str = 'cpu') -> dict:
    """What produced the figures: torch, CUDA, cuDNN, the driver, the GPU, Python, the CPUs and the date (UTC).
    The GPU machine's image runs its own torch (2.11 in the 2026-11 runs), not the pinned one."""
    import torch
    env = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
               torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
               cpus=os.cpu_count(), cpu=machine().split(';')[0])
    if device == 'cuda':
        env['cudnn'] = torch.backends.cudnn.version()
        env['gpu'] = torch.cuda.get_device_name(0)
        env['gpu_memory_gib'] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        try:
            out = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                                 capture_output=True, text=True, timeout=20).stdout.strip()
            env['driver'] = out.splitlines()[0] if out else 'nvidia-smi printed nothing'
        except (OSError, subprocess.TimeoutExpired):
            env['driver'] = 'nvidia-smi not available'
    return env


def environment_line(env: dict) -> str:
    parts = [env['date'], f"torch {env['torch']} (CUDA {env['cuda']}" + (f", cuDNN {env['cudnn']})" if 'cudnn' in env
                                                                        else ')')]
    if 'gpu' in env:
        parts.append(f"{env['gpu']} ({env['gpu_memory_gib']} GiB), driver {env['driver']}")
    parts.append(f"{env['cpu']}, Python {env['python']}")
    return 'Run: ' + '; '.join(parts) + '.'


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


def load_line(load: dict) -> str:
    return (f"CPU {100 * load['cpu_busy']:.0f} % busy, load average {load['loadavg_1min']:.1f} on {load['cpus']} "
            f"CPUs, other GPU processes: {', '.join(load['gpu_others']) or 'none'}")


def check_load(load: dict, max_cpu_busy: float, script: str) -> None:
    """Refuse to time on a busy machine: what else runs takes CPU time from launching kernels."""
    if load['cpu_busy'] > max_cpu_busy or [p for p in load['gpu_others'] if 'not available' not in p]:
        raise SystemExit(f'{script}: refusing to time on a busy machine: {load_line(load)} (CPU limit '
                         f'{100 * max_cpu_busy:.0f} %); stop them or pass --max-cpu-busy')


class Stopped(BaseException):
    """The run was told to stop (SIGTERM, SIGINT) or reached its hard deadline (SIGALRM). A BaseException, so
    that a row's ``except Exception`` records its own failures but lets this one end the run."""


@contextlib.contextmanager
def stop_on_signals(deadline_s: float = None):
    """Within this context, turn SIGTERM and SIGINT, and a hard deadline ``deadline_s`` seconds from now
    (SIGALRM), into :class:`Stopped` in the main thread: the row in progress is recorded as stopped and the
    tables are written before the process ends (a SIGKILL still leaves the tables of the rows before). The
    handlers and the timer are restored after (a benchmark's ``main`` also runs inside tests)."""
    def stop(signum, frame):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):  # one stop is enough: finish writing
            signal.signal(sig, signal.SIG_IGN)
        raise Stopped('deadline' if signum == signal.SIGALRM else signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    if deadline_s is not None and deadline_s != float('inf'):
        signal.setitimer(signal.ITIMER_REAL, max(deadline_s, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``, for a table cell."""
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'.strip().rstrip(':')[:200].replace('|', '/')


def write_results(text: str, data: dict, markdown_path: str = None, json_path: str = None) -> None:
    """The Markdown ``text`` and the JSON ``data`` of a run so far (called after every row), each written
    atomically: a kill leaves the previous complete file."""
    from mmfishnet.utils.checkpoint import atomic_write
    if markdown_path:
        atomic_write(markdown_path, lambda f: f.write(text.encode()))
    if json_path:
        atomic_write(json_path, lambda f: f.write((json.dumps(data, indent=1, default=str) + '\n').encode()))
