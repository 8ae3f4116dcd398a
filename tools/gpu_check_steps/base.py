# Copyright (c) mmfishnet contributors. All rights reserved.
"""What every step of the GPU acceptance run (tools/gpu_check.py) shares: the run's state (:class:`Check`:
budget, results, log, running commands) and the helpers that read the commands' output."""
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPU_CHECK = osp.join(ROOT, 'tools', 'gpu_check.py')  # also runs the jobs that need a fresh process
CLS_CONFIG = 'configs/toy/fishnet99_1xb16_toy-cls.py'
DET_CONFIG = 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py'
TERM_GRACE_S = 15  # a command past its time gets SIGTERM, then SIGKILL this much later (benchmarks write their tables)


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
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            out, _ = proc.communicate(timeout=max(timeout, 1))
            code = proc.returncode
        except BaseException as e:  # the timeout, or this run stopped: SIGTERM first, so the child writes its tables
            proc.terminate()
            try:
                out, _ = proc.communicate(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            if not isinstance(e, subprocess.TimeoutExpired):
                raise
            out = (out or '') + f'\n[timed out after {timeout:.0f} s: SIGTERM, then SIGKILL after {TERM_GRACE_S} s]'
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

def child_config(c: Check, name: str, base: str, body: str) -> str:
    """A config in the work dir that inherits ``base`` and changes what ``body`` says (mmengine's
    ``--cfg-options`` cannot take a list of dicts such as a schedule)."""
    path = osp.join(c.work, name + '.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {osp.join(ROOT, base)!r}\n{body}\n')
    return path

def build_log(status: str) -> str:
    return status[:-len('.status')] + '.log' if status.endswith('.status') else status + '.log'
