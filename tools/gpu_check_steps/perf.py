# Copyright (c) mmfishnet contributors. All rights reserved.
"""The benchmark steps of the GPU acceptance run: the backbone and Mask R-CNN benchmarks and the training-speed
run (``--only perf``, docs/training_speed.md). None runs while mmcv builds."""
import json
import os.path as osp
import sys
import time

from .base import ROOT, TERM_GRACE_S, Check, build_log, last_error


def run_benchmark(c: Check, script: str, extra: list, md_name: str, title: str):
    """Run ``benchmarks/<script>`` with ``extra`` arguments and its table written to ``md_name`` in the output
    folder, then add the table to the report, also after a failure or a timeout (the benchmarks that write after
    every row leave what they measured). Returns (output, None), or (output or None, the error) on a failure."""
    path = osp.join(c.args.out, md_name)
    code, out = c.run([sys.executable, osp.join(ROOT, 'benchmarks', script), *extra, '--markdown', path],
                      timeout=max(c.left() - 5 - TERM_GRACE_S, 1))  # ends within the budget, its grace included
    if osp.isfile(path):
        c.tables.append((title, open(path).read()))
    if code != 0 or not osp.isfile(path):
        return (out if osp.isfile(path) else None), f'exit code {code}: {last_error(out)}'
    return out, None


def deadline_args(c: Check, slack: float = 20, margin: float = 15) -> list:
    """``--budget`` and ``--deadline`` for a benchmark that plans its rows: its hard deadline ``slack`` s before
    this run's (time for the report), its rows planned to end ``margin`` s before its deadline."""
    deadline = max(c.left() - slack, 10)
    return ['--budget', f'{max(deadline - margin, 5):.0f}', '--deadline', f'{deadline:.0f}']


def previous_args(name: str) -> list:
    """``--previous docs/<name>``: the last GPU run's JSON, committed beside its table, for the estimates."""
    path = osp.join(ROOT, 'docs', name)
    return ['--previous', path] if osp.isfile(path) else []


def rows_of(md_path: str) -> list:
    """The rows of the JSON a benchmark writes beside its Markdown table."""
    path = osp.splitext(md_path)[0] + '.json'
    return json.load(open(path)).get('rows', []) if osp.isfile(path) else []


def wait_for_build_to_end(c: Check) -> None:
    """Benchmarks never run while mmcv builds: wait for a background build that is still going."""
    status = c.args.build_status
    if status and not osp.isfile(status) and osp.isfile(build_log(status)):
        c.say('[gpu_check] waiting for the mmcv build to end before benchmarking')
        while not osp.isfile(status) and c.left() > 60:
            time.sleep(5)

def bench_backbone(c: Check, amp: bool):
    if c.small:
        extra = ['--models', 'resnet50', 'fishnet99', '--size', '64', '--batch', '2', '--iters', '1',
                 '--rounds', '1', '--modes', 'train', '--resnet-impl', 'torchvision']
    else:
        extra = ['--batch', '32', '--iters', '10', '--warmup', '3', '--rounds', '2', '--modes', 'train',
                 '--variants', 'layout', '--resnet-impl', 'torchvision', '--in-process', '--device', 'cuda']
        extra += ['--amp'] if amp else []
    out, error = run_benchmark(c, 'bench_backbone.py', extra, f"bench_backbone_{'amp' if amp else 'fp32'}.md",
                               f'Backbone training step ({"AMP" if amp else "fp32/TF32"})')
    if error:
        return False, error
    rows = [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"model"')]
    fish = {r['model']: r for r in rows}
    f150, r50 = fish.get('fishnet150') or fish.get('fishnet99'), fish.get('resnet50')
    return True, (f'{f150["model"]} {f150["train img/s"]:.0f} img/s vs ResNet-50 {r50["train img/s"]:.0f} img/s; '
                  f'ms/GFLOP ratio {f150["train ms/GFLOP"] / r50["train ms/GFLOP"]:.2f}, peak memory ratio '
                  f'{f150["train peak MiB"] / r50["train peak MiB"]:.2f}')

def bench_train_speed(c: Check):
    """benchmarks/bench_train_speed.py: the training-speed matrix, timed on the GPU (docs/training_speed.md)."""
    # small mode tests the flow on a shared CPU: time anyway (the figures mean nothing there)
    extra = (['--smoke', '--max-cpu-busy', '1'] if c.small else
             ['--device', 'cuda'] + deadline_args(c) + previous_args('bench_train_speed.json'))
    out, error = run_benchmark(c, 'bench_train_speed.py', extra, 'bench_train_speed.md',
                               'Training speed (bench_train_speed.py)')
    rows = rows_of(osp.join(c.args.out, 'bench_train_speed.md'))
    best = {}
    for r in rows:
        if isinstance(r.get('img/s'), float) and r['precision'] in ('bf16', 'tf32'):
            if r['model'] not in best or r['img/s'] > best[r['model']]['img/s']:
                best[r['model']] = r
    failed = [r for r in rows if 'error' in r]
    figure = '; '.join(f"{m} {r['img/s']:.0f} img/s ({r['precision']}, b{r['batch']}, {r['compile']})"
                       for m, r in best.items()) or 'no row measured'
    figure += f'; {len(failed)} of {len(rows)} rows failed' if failed else ''
    return error is None and not failed and bool(best), (f'{error}; {figure}' if error else figure)

def bench_detector(c: Check):
    extra = (['--height', '128', '--width', '160', '--iters', '1', '--rounds', '1'] if c.small else
             ['--height', '800', '--width', '1216', '--iters', '5', '--rounds', '2', '--amp', '--device', 'cuda',
              '--in-process'])
    out, error = run_benchmark(c, 'bench_detector.py', extra, 'bench_detector_amp.md', 'Mask R-CNN training iteration')
    rows = {r['backbone']: r for r in rows_of(osp.join(c.args.out, 'bench_detector_amp.md'))}
    fish, res = rows.get('FishNet-150', {}), rows.get('ResNet-50', {})
    if error or 'iteration s' not in fish or 'iteration s' not in res:
        return False, error or f"FishNet-150: {fish.get('error', 'not run')}; ResNet-50: {res.get('error', 'not run')}"
    return True, (f'iteration {fish["iteration s"] * 1000:.0f} ms vs ResNet-50 {res["iteration s"] * 1000:.0f} ms '
                  f'({fish["iteration s"] / res["iteration s"]:.2f}x; backbone FLOPs '
                  f'{fish["backbone GFLOPs (2 imgs)"] / res["backbone GFLOPs (2 imgs)"]:.2f}x), peak memory '
                  f'{fish["peak MiB"] / res["peak MiB"]:.2f}x')

def bench_detector_fast(c: Check):
    """A Mask R-CNN iteration with AMP (fp16: mmcv 2.1.0's RoIAlign has no bf16 kernel), eager and with backbone
    and neck compiled (the detection fast path). Small mode: the same code paths on CPU, compiled with dynamo's
    ``eager`` backend (graph capture without inductor's minutes of C++)."""
    extra = (['--height', '128', '--width', '160', '--iters', '1', '--rounds', '1', '--compile-backbone',
              '--compile-backend', 'eager', '--no-memory'] if c.small else
             ['--height', '800', '--width', '1216', '--iters', '5', '--rounds', '2', '--amp', '--compile-backbone',
              '--device', 'cuda', '--in-process'] + deadline_args(c) + previous_args('bench_detector_fast.json'))
    out, error = run_benchmark(c, 'bench_detector.py', extra, 'bench_detector_fast.md',
                               'Mask R-CNN training iteration, AMP, eager and compiled backbone + neck')
    rows = rows_of(osp.join(c.args.out, 'bench_detector_fast.md'))
    figure = ', '.join(f"{r['backbone']} {r['iteration s'] * 1000:.0f} ms" if 'iteration s' in r and
                       '/' not in r['backbone'] else f"{r['backbone']} {r['iteration s']:.2f}x" if 'iteration s' in r
                       else f"{r['backbone']}: {r.get('error', '?')}" for r in rows) or 'no row measured'
    failed = [r for r in rows if 'error' in r]
    return error is None and not failed and bool(rows), (f'{error}; {figure}' if error else figure)
