# Copyright (c) mmfishnet contributors. All rights reserved.
"""The GPU acceptance run: proves the CUDA path and measures it, in one call, within a time budget.

    bash tools/gpu_check.sh                      # on a GPU machine: stage A, then stage B if time is left
    bash tools/gpu_check.sh --small              # the same flow on CPU at tiny sizes (no CUDA checks)

The steps live in ``tools/gpu_check_steps/``, one file per stage; this file is the order, the report and the
command line. Run through ``tools/gpu_check.sh``, which installs the OpenMMLab stack from the carried wheels first (see
its header). Each step prints ``PASS``/``FAIL``/``SKIP`` with its figure; everything goes to
``--out`` (default ``$OUT``, else ``work_dirs/gpu_check``): ``gpu_check.md`` (the report), ``gpu_check.log``
(every step's output) and the benchmark tables.

Stage A needs no compiled mmcv op: toy classifier trained with ``--amp`` and tested, kill + ``--resume``,
``dist_train.sh`` with NCCL + SyncBN, the numerical claims (channels-last, TF32, AMP, with_cp) and the
backbone benchmarks (ResNets from torchvision: mmdet's package imports mmcv's ops). Stage B needs mmcv
built with CUDA ops (``gpu_check.sh`` builds it in the background during stage A): RoIAlign/nms on CUDA
against CPU, the toy Mask R-CNN trained with ``--amp`` and evaluated, and the Mask R-CNN benchmark.
A step that would not finish within the budget is skipped and says what it would have needed.

``--only perf`` is the training-speed run (docs/training_speed.md): ``benchmarks/bench_train_speed.py``
alone, its rows planned to end before the budget. ``--only perf-det`` (its own call) times a Mask R-CNN
iteration eager and with the compiled backbone and neck (mmcv's CUDA ops: ``.whl/prebuilt/``). No benchmark
runs while mmcv builds: with ``perf`` or ``perf-det`` in ``--only`` it is never built (carry
``.whl/prebuilt/`` for the mmcv rows), and in a full run the benchmarks wait for the background build to end.
The report is rewritten after every step, and on SIGTERM the step in progress is stopped (its benchmark
writes its tables) and the report written.
"""
import argparse
import json
import os
import os.path as osp
import signal
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/, for gpu_check_steps

from gpu_check_steps.base import ROOT, Check  # noqa: E402
from gpu_check_steps.perf import (bench_backbone, bench_detector, bench_detector_fast, bench_train_speed,  # noqa: E402
                                  wait_for_build_to_end)
from gpu_check_steps.stage_a import (kill_and_resume, make_data, nccl_syncbn, numerics, numerics_job,  # noqa: E402
                                     train_cls_amp)
from gpu_check_steps.stage_b import mmcv_ops, ops_job, train_det_amp, wait_for_build  # noqa: E402

sys.path.insert(0, ROOT)


def report(c: Check) -> str:
    import platform
    lines = ['# GPU acceptance run', '']
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU (small mode)'
        versions = f'torch {torch.__version__} (CUDA {torch.version.cuda}), Python {platform.python_version()}'
    except ImportError:
        gpu, versions = '?', '?'
    for mod in ('numpy', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmpretrain'):
        try:
            versions += f', {mod} {__import__(mod).__version__}'
        except Exception:  # noqa: BLE001  (mmdet refuses to import without the right mmcv)
            pass
    lines += [f'Device: {gpu}.', f'Software: {versions}.',
              f'Command: `bash tools/gpu_check.sh {" ".join(c.args.forwarded)}` '
              f'(budget {c.args.budget:.0f} s, run took {time.time() - c.start:.0f} s).', '',
              '| stage | step | result | figure | s |', '|---|---|---|---|---|']
    lines += [f'| {s} | {n} | {r} | {f} | {t:.0f} |' for s, n, r, f, t in c.results]
    for title, table in c.tables:
        lines += ['', f'## {title}', '', table.strip()]
    return '\n'.join(lines) + '\n'


STEPS = [  # (key for --only, stage, name, seconds it needs at least, function), run in this order
    ('data', 'A', 'toy data', 30, make_data),
    ('cls', 'A', 'toy classifier --amp + test', 60, train_cls_amp),
    ('resume', 'A', 'kill mid-epoch + --resume', 50, kill_and_resume),
    ('syncbn', 'A', 'dist_train NCCL + SyncBN', 40, nccl_syncbn),
    ('numerics', 'A', 'numerics: channels-last, TF32, AMP, with_cp', 30, numerics),
    ('bench-fp32', 'A', 'bench backbone fp32 (TF32)', 90, lambda c: bench_backbone(c, amp=False)),
    ('bench-amp', 'A', 'bench backbone AMP', 80, lambda c: bench_backbone(c, amp=True)),
    ('ops', 'B', 'mmcv RoIAlign/nms CUDA vs CPU', 20, mmcv_ops),
    ('det', 'B', 'toy Mask R-CNN --amp + COCO eval', 100, train_det_amp),
    ('bench-det', 'B', 'bench Mask R-CNN AMP', 50, bench_detector),
    ('perf', 'A', 'bench training speed (CUDA events)', 120, bench_train_speed),
    ('perf-det', 'B', 'bench Mask R-CNN AMP, compiled backbone + neck', 90, bench_detector_fast),
]
BENCHMARKS = ('bench-fp32', 'bench-amp', 'perf', 'bench-det', 'perf-det')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--small', action='store_true', help='CPU, tiny sizes, no CUDA checks')
    parser.add_argument('--stages', default='AB', help='A, B or AB')
    parser.add_argument('--budget', type=float, default=540, help='seconds the whole run may take')
    parser.add_argument('--out', default=os.environ.get('OUT') or osp.join(ROOT, 'work_dirs', 'gpu_check'))
    parser.add_argument('--work-dir', default=None, help='training work dirs and toy data (not sent back)')
    parser.add_argument('--only', help='comma-separated keys of the steps to run (a rerun), of: ' +
                        ', '.join(step[0] for step in STEPS) + ' (the toy data is made when a training step runs); '
                        'perf: the training-speed table; perf-det: the Mask R-CNN iteration (its own call)')
    parser.add_argument('--t0', type=float, help=argparse.SUPPRESS)
    parser.add_argument('--build-status', help='file the background mmcv build writes "EXITCODE SECONDS" to')
    parser.add_argument('--numerics', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--ops', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--device', default='cuda', help=argparse.SUPPRESS)
    args, forwarded = parser.parse_known_args()
    if args.numerics:
        print('NUMERICS ' + json.dumps(numerics_job(args.device, args.small)))
        return
    if args.ops:
        print('OPS ' + json.dumps(ops_job(args.device)))
        return
    args.forwarded = sys.argv[1:]
    args.work_dir = args.work_dir or osp.join('/tmp', 'gpu_check_work')
    c = Check(args)
    if not args.small:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('gpu_check: torch sees no CUDA device here; use --small to test the flow on CPU')
    c.say(f'gpu_check: budget {args.budget:.0f} s, stages {args.stages}, {"small (CPU)" if args.small else "CUDA"}')
    only = set(args.only.split(',')) if args.only else None

    def write_report():
        text = report(c)
        with open(osp.join(args.out, 'gpu_check.md'), 'w') as f:
            f.write(text)
        return text

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt(f'gpu_check stopped by {signal.Signals(signum).name}')

    signal.signal(signal.SIGTERM, stop)
    try:
        run_steps(c, args, only, write_report)
    except KeyboardInterrupt as e:
        c.record('-', 'run', 'FAIL', f'stopped: {e}')
    text = write_report()
    print('\n' + text)
    failed = [r for r in c.results if r[2] == 'FAIL']
    sys.exit(1 if failed else 0)


def run_steps(c: Check, args, only, write_report) -> None:
    """The steps in order (:data:`STEPS`), the report rewritten after each."""
    build_ok = None
    for key, stage, name, estimate, fn in STEPS:
        needs_data = not only or only & {'cls', 'resume', 'syncbn', 'det'}  # the toy trainings' data
        if stage not in args.stages or (only and key not in only and not (key == 'data' and needs_data)):
            continue
        if name == 'dist_train NCCL + SyncBN' and c.small:
            c.record(stage, name, 'SKIP', 'needs CUDA (small mode)')
            continue
        if stage == 'B' and build_ok is None:  # stage B needs the mmcv built in the background meanwhile:
            # wait while the time left covers the stage B steps still to run
            reserve = sum(e for k, st, _, e, _ in STEPS if st == 'B' and (not only or k in only))
            build_ok = wait_for_build(c, reserve=reserve)
        if stage == 'B' and not build_ok:
            continue
        if key in BENCHMARKS:
            wait_for_build_to_end(c)
        c.step(stage, name, estimate, lambda fn=fn: fn(c))
        write_report()


if __name__ == '__main__':
    main()
