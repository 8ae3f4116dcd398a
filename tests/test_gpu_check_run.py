"""tools/gpu_check_steps: how the GPU run's steps survive a command that runs past its time (issue 24: a step's
timeout killed the benchmark with SIGKILL, so it could not write what it had measured), checked on CPU."""
import argparse
import os
import sys

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from gpu_check_steps import base  # noqa: E402
from gpu_check_steps.perf import deadline_args, run_benchmark  # noqa: E402

# a benchmark stand-in: writes its table when told to stop (SIGTERM), else sleeps past any timeout
WRITES_ON_SIGTERM = '''
import signal, sys, time
path = sys.argv[sys.argv.index('--markdown') + 1]
def stop(*_):
    open(path, 'w').write('| row |\\n|---|\\n| measured before the stop |\\n')
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
time.sleep(60)
'''


def check(tmp_path, budget=600):
    args = argparse.Namespace(small=True, t0=None, work_dir=str(tmp_path / 'work'), out=str(tmp_path / 'out'),
                              budget=budget)
    return base.Check(args)


def test_a_command_past_its_time_gets_sigterm_and_its_table_is_kept(tmp_path, monkeypatch):
    """Catches a timeout that kills with SIGKILL at once (the benchmark cannot write its table) or a table
    dropped from the report because the command failed: the stand-in writes its table on SIGTERM, and the
    report carries it with the failure."""
    c = check(tmp_path)
    monkeypatch.setattr(base, 'TERM_GRACE_S', 10)
    monkeypatch.setattr(c, 'left', lambda: 24.0)  # the step's timeout: left - 5 - 15 s of grace = 4 s
    monkeypatch.setattr('gpu_check_steps.perf.ROOT', str(tmp_path))
    (tmp_path / 'benchmarks').mkdir()
    (tmp_path / 'benchmarks' / 'bench.py').write_text(WRITES_ON_SIGTERM)
    out, error = run_benchmark(c, 'bench.py', [], 'bench.md', 'Stand-in')
    assert error.startswith('exit code 124') and 'timed out after 4 s: SIGTERM' in out
    assert c.tables == [('Stand-in', '| row |\n|---|\n| measured before the stop |\n')]


def test_deadline_args_leave_time_for_the_report():
    """Catches a benchmark given a deadline at or past the run's end (no time left to write the report) or a
    budget past its own deadline."""
    class Left:
        def left(self):
            return 250.0
    budget, deadline = (float(v) for v in deadline_args(Left())[1::2])
    assert deadline == 230 and budget == 215
