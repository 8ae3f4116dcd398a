"""benchmarks/bench_detector.py's table and plan, without running a detector (issue 24: one failed job lost every
row; a compiled job started without time for its compile)."""
import os
import sys

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import bench_detector as bench  # noqa: E402

JOBS = [dict(model='FishNet-150'), dict(model='ResNet-50'), dict(model='FishNet-150', compile=True),
        dict(model='ResNet-50', compile=True)]


def ok(seconds, peak=100.0, gflops=2.0):
    return dict(seconds=seconds, peak_mib=peak, backbone_gflops=gflops, compile_s=30.0, job_s=40.0)


def test_a_failed_job_keeps_its_row_and_the_others():
    """Catches a failed job that drops the table or its error, a ratio taken with a failed job, or a compile time
    shown for an eager job: the compiled FishNet failed, so only the eager ratio is there."""
    results = [ok(0.2, 300.0, 3.0), ok(0.1, 100.0, 2.0), dict(error='RuntimeError: inductor failed', job_s=5.0),
               ok(0.08)]
    rows = bench.result_rows(JOBS, results)
    assert [r['backbone'] for r in rows] == ['FishNet-150', 'ResNet-50', 'FishNet-150 compiled', 'ResNet-50 compiled',
                                             'FishNet-150 / ResNet-50']
    assert rows[2] == {'backbone': 'FishNet-150 compiled', 'job s': 5.0, 'error': 'RuntimeError: inductor failed'}
    assert 'compile s' not in rows[0] and rows[3]['compile s'] == 30.0
    assert rows[4] == {'backbone': 'FishNet-150 / ResNet-50', 'iteration s': 2.0, 'peak MiB': 3.0,
                       'backbone GFLOPs (2 imgs)': 1.5}


def test_the_compiled_ratios_need_both_compiled_jobs():
    """Catches the compiled ratio taken against the eager ResNet-50 under the compiled name, or missing."""
    rows = {r['backbone']: r for r in bench.result_rows(JOBS, [ok(0.2), ok(0.1), ok(0.25), ok(0.125)])}
    assert rows['FishNet-150 / ResNet-50, compiled']['iteration s'] == 2.0
    assert rows['FishNet-150 compiled / ResNet-50 eager']['iteration s'] == 2.5


def test_a_compiled_job_is_planned_with_its_compile():
    """Catches a compiled job's cost without its compile, or the previous run's measured time ignored."""
    assert bench.job_cost(JOBS[0], {}) == dict(compile=0.0, total=bench.SETUP_S)
    assert bench.job_cost(JOBS[2], {}) == dict(compile=bench.DEFAULT_COMPILE_S['FishNet-150'],
                                               total=bench.SETUP_S + bench.DEFAULT_COMPILE_S['FishNet-150'])
    previous = {'FishNet-150 compiled': {'compile s': 120.0, 'job s': 150.0}}
    assert bench.job_cost(JOBS[2], previous) == dict(compile=120.0, total=150.0)
