"""benchmarks/bench_train_speed.py: what can be checked without a GPU (the CUDA timing and kernel paths run
for the first time on the device, through tools/gpu_check.sh --only perf). The kernel counting is checked on
constructed profiler events of the kinds a CUDA profile holds, and on the names a real CPU profile gives."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from helpers import ROOT, cpu_tool_env

sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import bench_train_speed as bench  # noqa: E402
import common  # noqa: E402

SCRIPT = os.path.join(ROOT, 'benchmarks', 'bench_train_speed.py')


def test_smoke_run_writes_the_report_and_keeps_a_failed_row(tmp_path):
    """Catches a broken CPU path of the benchmark (argument parsing, the settings, a step per precision
    with and without GradScaler and compile, the GEMM peak, the profile phase, the ratios, the report and its
    JSON with the versions), and a failing row that loses the others or its error (issue 24: ``measure`` caught
    only OutOfMemoryError): row 2 fails on purpose (``--fail-row``)."""
    out = tmp_path / 'speed.md'
    rows = bench.main(['--smoke', '--max-cpu-busy', '1', '--markdown', str(out), '--fail-row', '2'])
    assert [(r['model'], r['precision'], r['compile']) for r in rows] == [
        ('fishnet99', 'bf16', 'eager'), ('resnet50', 'tf32', 'eager'), ('fishnet99', 'fp16', 'eager'),
        ('fishnet99', 'tf32', 'default')]
    assert rows[2]['error'] == 'RuntimeError: planted failure (--fail-row)' and 'img/s' not in rows[2]
    text = out.read_text()
    assert 'Load before timing: CPU' in text and 'measured by a 256^3 GEMM' in text and '% GEMM peak' in text
    assert f'torch {torch.__version__}' in text and '| RuntimeError: planted failure (--fail-row) |' in text
    for r in rows[:2] + rows[3:]:
        assert r['kernels'] > 100 and r['img/s'] > 0 and len(text.split(f"| {r['model']} | {r['precision']} |")) > 1
    assert rows[1]['ms/GFLOP vs R50'] == 1 and 'ms/GFLOP vs R50' not in rows[0]  # no bf16 ResNet-50 row
    data = json.loads((tmp_path / 'speed.json').read_text())
    assert data['environment']['torch'] == torch.__version__ and data['stopped'] is None
    assert [r['model'] for r in data['rows']] == [r['model'] for r in rows] and data['rows'][3]['kernels'] > 100


def test_a_stopped_run_leaves_what_it_measured(tmp_path):
    """Catches a run that writes its tables only at the end (issue 24: a timeout or SIGTERM left no table):
    SIGTERM once the first row is in the JSON; the tables then hold that row with its figures, the row in
    progress says it was stopped, and the Markdown says the run stopped early."""
    md, js = tmp_path / 'speed.md', tmp_path / 'speed.json'
    proc = subprocess.Popen([sys.executable, SCRIPT, '--smoke', '--max-cpu-busy', '1', '--models', 'fishnet99',
                             '--markdown', str(md)], cwd=ROOT, env=cpu_tool_env(PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3000):
            seen = json.loads(js.read_text()) if js.exists() else dict(rows=[])
            if seen['rows'] and 'img/s' in seen['rows'][0]:
                break
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            time.sleep(0.2)
        assert 'load_after' not in seen  # the first row was written while the others were still being timed
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    data = json.loads(js.read_text())
    assert data['stopped'] == 'SIGTERM' and data['rows'][0]['img/s'] > 0
    assert 'Stopped early (SIGTERM)' in md.read_text()
    assert len(data['rows']) + len(data['skipped']) == 3, data  # each setting: a row, or listed as not run


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
    common.check_load(idle, 0.25, 'bench')
    with pytest.raises(SystemExit, match='other GPU processes'):
        common.check_load(dict(idle, gpu_others=['4242, python']), 0.25, 'bench')


def test_cpu_kernel_count_is_the_top_level_ops():
    """Catches counting the ops nested inside others (allocations, the ops a composite calls) or missing
    ops: ``relu(a + b) * 2`` dispatches exactly 3 top-level ATen ops."""
    a, b = torch.rand(8, 8), torch.rand(8, 8)
    assert bench.profile_step(lambda: torch.relu(a + b) * 2, 'cpu')['kernels'] == 3


def event(name, start, end, device=DeviceType.CUDA, thread=1, **kw):
    return FunctionEvent(id=0, name=name, thread=thread, start_us=start, end_us=end, device_type=device, **kw)


def annotation_names():
    """The annotations of a real CPU profile of a compiled forward and an SGD step (dynamo's ``eager``
    backend): "Optimizer.step#SGD.step" (a user annotation) and "Torch-Compiled Region: 0/0" (a cpu_op in
    torch 2.14.1), names that a CUDA profile also shows as GPU-side spans (issue 24)."""
    from torch.profiler import ProfilerActivity, profile
    model = torch.nn.Linear(4, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fn = torch.compile(lambda x: model(x).sum(), backend='eager')
    fn(torch.rand(2, 4)).backward()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(torch.rand(2, 4)).backward()
        opt.step()
    torch._dynamo.reset()
    return {e.name for e in prof.events() if e.is_user_annotation or e.name.startswith('Torch-Compiled Region')}


def test_annotations_and_copies_are_no_kernels():
    """Catches counting every CUDA-side profiler event as a kernel (issue 24): the user annotations mirrored on
    the GPU ("Optimizer.step#SGD.step", "Torch-Compiled Region", ``ProfilerStep*``; with the flag, or without
    it as an older torch reports them, by their host-side name) and memcpy/memset are not kernels, copies are
    listed apart, and the time by kind counts each kernel once (an annotation spans kernels: counting it
    doubled their time)."""
    names = annotation_names()
    assert {'Optimizer.step#SGD.step'} <= names and any(n.startswith('Torch-Compiled Region') for n in names)
    host = [event(n, 0, 100, DeviceType.CPU, is_user_annotation=True) for n in names]
    host.append(event('ProfilerStep#3', 0, 100, DeviceType.CPU, is_user_annotation=True))
    mirrored = [event(n, 0, 100, is_user_annotation=flag) for n in names for flag in (True, False)]
    mirrored.append(event('ProfilerStep#3', 0, 100))
    kernels = [event('sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc', 10, 30),
               event('triton_poi_fused_add_native_batch_norm_relu_0', 30, 35),
               event('void at::native::multi_tensor_apply_kernel<...>', 35, 36)]
    copies = [event('Memcpy HtoD (Pageable -> Device)', 1, 3), event('Memset (Device)', 3, 4)]
    counted = bench.count_events(host + mirrored + kernels + copies)
    assert (counted['kernels'], counted['copies']) == (3, 2)
    assert counted['kinds'] == {'conv (cuDNN)': 0.02, 'inductor (fused)': 0.005, 'optimizer (foreach)': 0.001,
                                bench.COPY_KIND: 0.003}


def test_launches_count_each_host_call_once():
    """Catches launches counted twice (a driver call made inside a runtime call), graph replays not counted as
    launches, or memcpy/memset calls counted as kernel launches."""
    cpu = DeviceType.CPU
    host = [event('cudaLaunchKernel', 0, 10, cpu), event('cuLaunchKernel', 2, 8, cpu),  # the driver call inside
            event('cuLaunchKernel', 20, 25, cpu),  # a Triton kernel: the driver API only
            event('cudaGraphLaunch', 30, 40, cpu), event('cudaLaunchKernelExC', 50, 55, cpu),
            event('cudaLaunchKernel', 52, 60, cpu, thread=2),  # another thread, overlapping in time
            event('cudaMemcpyAsync', 70, 75, cpu), event('cudaMemsetAsync', 80, 85, cpu),
            event('aten::add', 0, 90, cpu)]
    counted = bench.count_events(host)
    assert (counted['launches'], counted['copy calls'], counted['kernels']) == (5, 2, 0)


def test_breakdown_lists_copies_apart_from_the_kernel_total():
    """Catches memcpy/memset time added to the kernels' total in the breakdown table."""
    row = dict(model='fishnet150', compile='eager', precision='bf16', batch=32,
               kinds={'conv (cuDNN)': 2.0, 'elementwise': 1.0, bench.COPY_KIND: 0.5})
    lines = {ln.split('|')[1].strip(): ln.split('|')[2].strip() for ln in bench.breakdown_table([row]).splitlines()[2:]}
    assert lines['total (kernels) (ms)'] == '3' and lines[f'{bench.COPY_KIND} (ms)'] == '0.5'


def test_gflops_of_a_compiled_module():
    """Catches counting FLOPs through a module compiled in place (``compile_modules``, as
    ``bench_detector.py --compile-backbone`` does): mmengine's FlopAnalyzer traces with torch.jit, which dynamo
    refuses ("Detected that you are using FX to torch.jit.trace a dynamo-optimized function"); the count is
    taken uncompiled and the module stays compiled after it."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
    plain = common.forward_gflops(model, (1, 3, 16, 16))
    assert plain == pytest.approx((3 * 8 * 9 + 8 * 4) * 16 * 16 / 1e9)  # multiply-adds of the two convs
    model[0].compile(backend='eager')
    model.compile(backend='eager')
    try:
        assert common.forward_gflops(model, (1, 3, 16, 16)) == plain
        assert model._compiled_call_impl is not None and model[0]._compiled_call_impl is not None and model.training
    finally:
        torch._dynamo.reset()
