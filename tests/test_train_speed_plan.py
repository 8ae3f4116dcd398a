"""benchmarks/train_speed_plan.py: the order and the budget of the GPU speed run, checked without a GPU (issue
24: a plan of 42 settings with 12 cold compiles in a call of ~300 s, the budget checked only when a row starts,
so a compile begun late ran into the kill)."""
import os
import sys

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import bench_train_speed as bench  # noqa: E402
import train_speed_plan as planner  # noqa: E402

ALL = planner.settings(bench.MODELS, bench.PRECISIONS, [32, 128, 256], list(bench.COMPILE_MODES))
N_STEPS = planner.steps_per_row(5, 5, 10)


def cost(measured=(), previous=()):
    return lambda s: planner.estimate(s, N_STEPS, list(measured), list(previous))


def test_the_targets_come_first_then_tf32_fp16_and_batch_256():
    """Catches a plan that loses the targets' settings from the front (FishNet-150 and ResNet-50, bf16, batch
    32 and 128, eager and CUDA graphs), puts TF32/fp16/batch 256 before them, repeats a setting or drops a
    model x precision pair or a compile mode."""
    assert ALL[:8] == [('fishnet150', 'bf16', 32, 'eager', True), ('resnet50', 'bf16', 32, 'eager', True),
                       ('fishnet150', 'bf16', 128, 'eager', True), ('resnet50', 'bf16', 128, 'eager', True),
                       ('fishnet150', 'bf16', 32, 'cudagraphs', True), ('resnet50', 'bf16', 32, 'cudagraphs', True),
                       ('fishnet150', 'bf16', 128, 'cudagraphs', True), ('resnet50', 'bf16', 128, 'cudagraphs', True)]
    assert ALL[8:14] == [('fishnet150', 'tf32', 32, 'eager', True), ('resnet50', 'tf32', 32, 'eager', True),
                         ('fishnet150', 'fp16', 32, 'eager', True), ('resnet50', 'fp16', 32, 'eager', True),
                         ('fishnet150', 'bf16', 256, 'eager', True), ('resnet50', 'bf16', 256, 'eager', True)]
    assert len(set(ALL)) == len(ALL) and {c for _, _, _, c, _ in ALL} == set(bench.COMPILE_MODES)
    assert {(m, p) for m, p, b, c, _ in ALL if b == 32 and c == 'eager'} == {
        (m, p) for m in bench.MODELS for p in bench.PRECISIONS}


def test_the_plan_fits_its_budget_by_construction():
    """Catches a schedule whose estimated rows add up to more than the budget, that leaves a cheaper later row
    out when an expensive one does not fit, or that ignores a row's compile time."""
    for budget in (0, 30, 100, 300, 600, 3000):
        run, skipped = planner.schedule(ALL, budget, cost())
        assert sum(cost()(s)['total'] for s in run) <= budget
        assert len(run) + len(skipped) == len(ALL) and run == [s for s in ALL if s in run]  # priority kept
    # 300 s with the defaults: the eager targets (~10-20 s each) and FishNet-150's CUDA graphs at batch 32 (a
    # ~172 s compile) fit; ResNet-50's (~69 s compile) no longer does, the cheaper TF32 rows after it do
    run, skipped = planner.schedule(ALL, 300, cost())
    assert run[:5] == ALL[:5] and ALL[5] == ('resnet50', 'bf16', 32, 'cudagraphs', True)
    assert skipped[0] == (ALL[5], 'needs compile ~69 s + ~11 s, 57 s left') and ALL[8] in run


def test_a_compiled_row_does_not_start_without_time_for_its_compile():
    """Catches the budget checked against the run's time only (not the compile's): with 150 s left and
    FishNet-150's compile measured at 170 s by the previous run, the compiled row is passed over (and says
    why) and the next eager row runs."""
    previous = [dict(model='fishnet150', precision='bf16', batch=32, compile='cudagraphs',
                     **{'cudnn.benchmark': 'on', 'compile s': 170.0, 'row s': 185.0})]
    pending = [('fishnet150', 'bf16', 32, 'cudagraphs', True), ('resnet50', 'bf16', 32, 'eager', True)]
    setting, passed = planner.next_setting(pending, 150, cost(previous=previous))
    assert setting == ('resnet50', 'bf16', 32, 'eager', True)
    assert passed == [(pending[0], 'needs compile ~170 s + ~15 s, 150 s left')]
    assert planner.next_setting(pending, 190, cost(previous=previous))[0] == pending[0]


def test_estimates_prefer_this_run_then_the_previous_run_then_the_defaults():
    """Catches estimates that ignore what was measured: the previous run's row of the same setting, this run's
    compile of the same model and mode (another batch), and the defaults only where nothing was measured."""
    s32, s128 = ('fishnet150', 'bf16', 32, 'cudagraphs', True), ('fishnet150', 'bf16', 128, 'cudagraphs', True)
    assert cost()(s32)['compile'] == planner.DEFAULT_COMPILE_S['fishnet150'] * planner.CUDAGRAPHS_EXTRA
    previous = [dict(model='fishnet150', precision='bf16', batch=32, compile='cudagraphs',
                     **{'cudnn.benchmark': 'on', 'compile s': 90.0, 'row s': 100.0, 'img/s': 2500.0})]
    assert cost(previous=previous)(s32) == dict(compile=90.0, run=10.0, profile=planner.SETUP_S + 45.0 + 10.0 * 6 / 55,
                                                total=100.0)
    measured = [dict(previous[0], batch=128, **{'compile s': 120.0})]
    assert cost(measured, previous)(s32)['compile'] == 90.0  # the same setting's own figure first
    assert cost(measured, previous)(s128)['compile'] == 120.0  # else this run's, same model and mode
    failed = [dict(measured[0], error='RuntimeError: x')]
    assert cost(failed)(s128)['compile'] == planner.DEFAULT_COMPILE_S['fishnet150'] * planner.CUDAGRAPHS_EXTRA
    eager = ('resnet50', 'bf16', 128, 'eager', True)
    assert cost()(eager) == dict(compile=0.0, run=planner.SETUP_S + N_STEPS * 128 / planner.DEFAULT_IMG_S['resnet50'],
                                 profile=cost()(eager)['profile'], total=cost()(eager)['run'])


def test_the_run_skips_every_row_that_does_not_fit(tmp_path):
    """Catches rows started past the budget: with no time, every setting is listed as not run (with why) and
    the tables are still written."""
    rows = bench.main(['--smoke', '--max-cpu-busy', '1', '--budget', '0', '--markdown', str(tmp_path / 's.md')])
    text = (tmp_path / 's.md').read_text()
    assert rows == [] and 'No row measured.' in text and text.count(', 0 s left)') == 4
