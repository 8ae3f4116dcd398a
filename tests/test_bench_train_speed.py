"""benchmarks/bench_train_speed.py: what can be checked without a GPU (the CUDA timing and kernel paths run
for the first time on the device, through tools/gpu_check.sh --only perf)."""
import os
import sys

import pytest
import torch

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import bench_train_speed as bench  # noqa: E402


def test_smoke_run_writes_the_report(tmp_path):
    """Catches a broken CPU path of the benchmark (argument parsing, the settings, a step per precision
    with and without GradScaler and compile, the GEMM peak, kernel counting, the ratios and the report)."""
    out = tmp_path / 'speed.md'
    rows = bench.main(['--smoke', '--max-cpu-busy', '1', '--markdown', str(out)])
    assert [(r['model'], r['precision'], r['compile']) for r in rows] == [
        ('fishnet99', 'bf16', 'eager'), ('resnet50', 'tf32', 'eager'), ('fishnet99', 'fp16', 'eager'),
        ('fishnet99', 'tf32', 'default')]
    text = out.read_text()
    assert 'Load before: CPU' in text and 'measured by a 256^3 GEMM' in text and '% GEMM peak' in text
    for r in rows:
        assert r['kernels'] > 100 and r['img/s'] > 0 and len(text.split(f"| {r['model']} | {r['precision']} |")) > 1
    assert rows[1]['ms/GFLOP vs R50'] == 1 and 'ms/GFLOP vs R50' not in rows[0]  # no bf16 ResNet-50 row


def test_ratio_to_resnet50_in_the_same_setting():
    """Catches a time-per-GFLOP ratio taken against ResNet-50 in another setting, or inverted."""
    setting = dict(precision='bf16', batch=32, compile='eager', **{'cudnn.benchmark': 'on'})
    rows = [dict(model='resnet50', **setting, **{'ms/step': 10.0, 'TFLOP/s': 100.0}),
            dict(model='resnet50', **dict(setting, batch=128), **{'ms/step': 30.0, 'TFLOP/s': 200.0}),
            dict(model='fishnet150', **setting, **{'ms/step': 30.0, 'TFLOP/s': 50.0})]
    bench.add_ratios(rows)
    assert [r['ms/GFLOP vs R50'] for r in rows] == [1, 1, 2]


def test_refuses_to_time_on_a_busy_machine():
    """Catches timing on a busy machine: a CPU busier than the limit, or another process on the GPU."""
    with pytest.raises(SystemExit, match='refusing to time on a busy machine'):
        bench.main(['--smoke', '--max-cpu-busy', '-1'])
    idle = dict(cpu_busy=0.0, loadavg_1min=0.0, cpus=16, gpu_others=[])
    bench.check_load(idle, 0.25)
    with pytest.raises(SystemExit, match='other GPU processes'):
        bench.check_load(dict(idle, gpu_others=['4242, python']), 0.25)


def test_cpu_kernel_count_is_the_top_level_ops():
    """Catches counting the ops nested inside others (allocations, the ops a composite calls) or missing
    ops: ``relu(a + b) * 2`` dispatches exactly 3 top-level ATen ops."""
    a, b = torch.rand(8, 8), torch.rand(8, 8)
    assert bench.profile_step(lambda: torch.relu(a + b) * 2, 'cpu')['kernels'] == 3


def test_plan_and_kernel_kinds():
    """Catches a plan that loses the targets' settings from the front (FishNet-150 and ResNet-50, bf16, batch
    32 and 128, eager and CUDA graphs) or a compile mode, repeats a setting or drops a model x precision pair;
    and kernel names sorted into the wrong kind in the breakdown."""
    rows = bench.plan(bench.MODELS, bench.PRECISIONS, [32, 128, 256], list(bench.COMPILE_MODES))
    assert rows[:4] == [('fishnet150', 'bf16', 32, 'eager', True), ('resnet50', 'bf16', 32, 'eager', True),
                        ('fishnet150', 'bf16', 32, 'cudagraphs', True), ('resnet50', 'bf16', 32, 'cudagraphs', True)]
    assert ('fishnet150', 'bf16', 128, 'cudagraphs', True) in rows[:8] and len(set(rows)) == len(rows)
    assert {c for _, _, _, c, _ in rows} == set(bench.COMPILE_MODES)
    assert {(m, p) for m, p, b, c, _ in rows if b == 32 and c == 'eager'} == {
        (m, p) for m in bench.MODELS for p in bench.PRECISIONS}
    assert {b for _, _, b, _, _ in rows} == {32, 128, 256}
    kinds = {'sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc': 'conv (cuDNN)',
             'triton_poi_fused_add_native_batch_norm_relu_0': 'inductor (fused)',
             'void at::native::batch_norm_collect_statistics_channels_last_kernel': 'batch norm',
             'void at::native::multi_tensor_apply_kernel<...>': 'optimizer (foreach)',
             'void at::native::elementwise_kernel<128, 2, ...>': 'elementwise',
             'ampere_bf16_s16816gemm_bf16_128x64_ldg8_f2f_tn': 'GEMM',
             'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64': 'GEMM'}
    assert {name: bench.kernel_kind(name) for name in kinds} == kinds
