# Copyright (c) mmfishnet contributors. All rights reserved.
"""A Mask R-CNN training iteration with FishNet-150 against ResNet-50 (mmdet's own config), in one run.

    python benchmarks/bench_detector.py                      # 2 images of 480x800 (COCO's 800x1333 x0.6)
    python benchmarks/bench_detector.py --height 800 --width 1344 --device cuda --markdown out.md
    python benchmarks/bench_detector.py --height 800 --width 1216 --device cuda --amp --in-process
    python benchmarks/bench_detector.py --height 800 --width 1216 --device cuda --amp --compile-backbone \
        --in-process                                          # + backbone and neck compiled (the fast path)

Reports the iteration time (forward + backward + SGD step; the fastest of interleaved rounds), the peak
memory of an iteration (see ``common.py``), the backbones' forward FLOPs at that size, and the
FishNet/ResNet ratios of all three: the target is an iteration ratio no larger than the backbone FLOPs
ratio. Each backbone runs as its config builds it (FishNet: channels-last by default). ``--amp``: fp16
autocast with a dynamic loss scale, as ``AmpOptimWrapper`` trains (``tools/train.py --amp``; not bf16: mmcv
2.1.0's RoIAlign has no bf16 kernel); fp32 on CUDA means TF32 convolutions and matrix products.
``--compile-backbone`` adds both detectors with their backbone and neck compiled as the detection fast path
does (``compile_modules=dict(modules=['backbone', 'neck'])``, docs/training_speed.md; no CUDA graphs): the
first iteration, which compiles, is the job's warm-up, and its time is reported; the backbone's FLOPs are
counted before it is compiled (mmengine's FlopAnalyzer traces with torch.jit, which dynamo refuses on a compiled
module). ``--compile-backend eager`` (the CPU smoke run) captures the graphs without inductor's compile.

The tables survive failures: a job that fails is its row's ``error`` (first line) and the others go on; the
Markdown and a JSON of the rows (``--json``; with torch, CUDA, the driver, the GPU, the date and the load) are
rewritten after every job, and SIGTERM or ``--deadline`` stops the run with its tables written. A compiled job
starts only if its estimated compile and iterations fit in what is left of ``--budget`` (estimates from
``--previous``, an earlier run's JSON, else :data:`DEFAULT_COMPILE_S`). With ``--in-process`` (CUDA) a job's
memory is read in its time job, so nothing is compiled twice.
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

CONFIGS = {
    'FishNet-150': osp.join(common.ROOT, 'configs', 'mask_rcnn_fishnet150_fpn_1x_coco.py'),
    'ResNet-50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}
# Cold compile of backbone + neck at 2x800x1216 on the H200 machine, seconds: leads until a run measures them
# (the issue that prepared the run estimated 100-200 s for FishNet-150 in the classifier)
DEFAULT_COMPILE_S = {'FishNet-150': 160, 'ResNet-50': 70}
SETUP_S = 15.0  # building the detector and its data, the FLOP count, the timed iterations


def job(args: dict) -> dict:
    import torch
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope
    path = CONFIGS[args['model']]
    if '::' in path:  # a package config: load it through a one-line child config
        import tempfile
        child = osp.join(tempfile.mkdtemp(), 'bench.py')
        with open(child, 'w') as f:
            f.write(f'_base_ = {path!r}\n')
        path = child
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    if args.get('nchw'):
        cfg.model.backbone.channels_last = False
    init_default_scope('mmdet')
    common.set_tf32(args['device'])
    torch.manual_seed(0)  # the same weights for the same backbone in every job
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model).to(args['device'])
    h, w = args['height'], args['width']
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    packed = demo_mm_inputs(2, [[3, h, w]] * 2, num_items=[5, 5], with_mask=True)
    data = model.data_preprocessor(packed, True)
    amp = bool(args.get('amp'))
    scaler = torch.amp.GradScaler(args['device'], enabled=amp)
    gflops = common.forward_gflops(model.backbone, (1, 3, h, w)) * 2 if args['kind'] == 'time' else None
    if args.get('compile'):
        from mmfishnet.engine.fast_path import compile_modules
        compile_modules(model, ['backbone', 'neck'], **({'backend': args['backend']} if args.get('backend') else {}))

    def step():
        # The RPN and RoI heads sample anchors and proposals at random; the same draws in every step and
        # job keep the heads' share of the iteration from adding noise to the comparison.
        torch.manual_seed(0)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=args['device'], dtype=torch.float16, enabled=amp):
            total, _ = model.parse_losses(model(**data, mode='loss'))
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()

    compile_seconds = 0.0
    if args.get('compile'):  # the compiling iteration, timed apart
        t0 = time.perf_counter()
        step()
        if args['device'] == 'cuda':
            torch.cuda.synchronize()
        compile_seconds = time.perf_counter() - t0
    result = common.measure_step(step, args['kind'], args['iters'], args['device'])
    result['compile_s'] = compile_seconds
    if args['kind'] == 'time':
        result['backbone_gflops'] = gflops
        if args['device'] == 'cuda' and args.get('memory_here'):  # in-process: no second job, no second compile
            result['peak_mib'] = common.step_peak_mib(step, 'cuda')
            result['reserved_mib'] = torch.cuda.max_memory_reserved() / 2**20
    return result


def job_name(job_args: dict) -> str:
    return (job_args['model'] + (' nchw' if job_args.get('nchw') else '') +
            (' compiled' if job_args.get('compile') else ''))


def job_cost(job_args: dict, previous: dict) -> dict:
    """Seconds a time job is expected to take (``compile``, ``total``), from the previous run's row of that name
    (its ``job s``) or the defaults."""
    name, compile_s = job_name(job_args), 0.0
    if job_args.get('compile'):
        compile_s = (previous.get(name, {}).get('compile s') or
                     DEFAULT_COMPILE_S.get(job_args['model'], max(DEFAULT_COMPILE_S.values())))
    total = previous.get(name, {}).get('job s') or SETUP_S + compile_s
    return dict(compile=compile_s, total=max(total, compile_s))


def result_rows(jobs, results) -> list:
    """The table: one row per job (its error, if any), then the FishNet-150 / ResNet-50 ratios where both ran."""
    rows = []
    for job_args, result in zip(jobs, results):
        if result is None:
            continue
        row = {'backbone': job_name(job_args)}
        for key, col in (('seconds', 'iteration s'), ('peak_mib', 'peak MiB'), ('reserved_mib', 'reserved MiB'),
                         ('backbone_gflops', 'backbone GFLOPs (2 imgs)'), ('compile_s', 'compile s'),
                         ('job_s', 'job s'), ('error', 'error')):
            if key in result and (key != 'compile_s' or job_args.get('compile')):
                row[col] = result[key]
        rows.append(row)
    by_name = {r['backbone']: r for r in rows if 'iteration s' in r}
    ratios = (('FishNet-150', 'ResNet-50', 'FishNet-150 / ResNet-50'),
              ('FishNet-150 compiled', 'ResNet-50 compiled', 'FishNet-150 / ResNet-50, compiled'),
              ('FishNet-150 compiled', 'ResNet-50', 'FishNet-150 compiled / ResNet-50 eager'))
    for fish_name, res_name, name in ratios:
        fish, res = by_name.get(fish_name), by_name.get(res_name)
        if fish and res:
            rows.append({'backbone': name, **{
                col: fish[col] / res[col] for col in ('iteration s', 'peak MiB', 'backbone GFLOPs (2 imgs)')
                if fish.get(col) and res.get(col)}})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--job', help=argparse.SUPPRESS)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--width', type=int, default=800)
    parser.add_argument('--iters', type=int, default=3, help='timed iterations per job (the fastest counts)')
    parser.add_argument('--rounds', type=int, default=2, help='interleaved rounds of the time jobs')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--nchw', action='store_true', help='also FishNet-150 with channels_last=False')
    parser.add_argument('--amp', action='store_true', help='fp16 autocast with a dynamic loss scale')
    parser.add_argument('--compile-backbone', action='store_true',
                        help='also both detectors with backbone and neck compiled (the detection fast path)')
    parser.add_argument('--in-process', action='store_true',
                        help='CUDA only: run every job in this process (no fresh interpreter per job)')
    parser.add_argument('--compile-backend', help='torch.compile backend of --compile-backbone (default inductor; '
                        'eager: the CPU smoke run, graph capture only)')
    parser.add_argument('--budget', type=float, default=float('inf'),
                        help='seconds; a job starts only if its estimate (its compile included) fits')
    parser.add_argument('--deadline', type=float, default=float('inf'),
                        help='seconds after which the run stops wherever it is and writes its tables')
    parser.add_argument('--previous', help="an earlier run's JSON: its measured times replace the estimates")
    parser.add_argument('--no-memory', action='store_true',
                        help='time jobs only (the CPU smoke run: a memory job per model would double its time)')
    parser.add_argument('--markdown')
    parser.add_argument('--json', help='every row and the versions (default: next to --markdown, .json)')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    with common.stop_on_signals(args.deadline):
        run_jobs(args, argv)


def run_jobs(args, argv) -> None:
    """The time jobs in rounds, then the memory jobs; the tables written after each (see the docstring)."""
    start = time.time()
    if args.in_process:
        common.run_in_process(job, args.device)
    if args.json is None and args.markdown:
        args.json = osp.splitext(args.markdown)[0] + '.json'
    jobs = [dict(model=name, device=args.device, height=args.height, width=args.width, iters=args.iters,
                 amp=args.amp) for name in CONFIGS]
    if args.nchw:
        jobs.append(dict(jobs[0], nchw=True))
    if args.compile_backbone:
        jobs += [dict(job, compile=True, backend=args.compile_backend) for job in jobs[:2]]
    previous = {}
    if args.previous and osp.isfile(args.previous):
        previous = {r['backbone']: r for r in json.load(open(args.previous)).get('rows', []) if 'backbone' in r}
    state = dict(environment=common.environment(args.device), load_before=common.machine_load(args.device),
                 rows=[], skipped=[], stopped=None)
    precision = 'AMP (fp16 autocast, dynamic loss scale)' if args.amp else 'fp32'
    header = (common.header(__file__, argv) + common.environment_line(state['environment']) + '\n' +
              f"Load before: {common.load_line(state['load_before'])}.\n" +
              f'Mask R-CNN + FPN training iteration, 2 images of {args.height}x{args.width}, {precision}; '
              'ratio rows: FishNet-150 / ResNet-50 as their configs build them.\n')
    results, memory_here = [None] * len(jobs), bool(args.in_process and args.device == 'cuda')

    def write():
        state['rows'] = result_rows(jobs, results)
        text = header + (f"**Stopped early ({state['stopped']})**: the rows below are what was measured.\n"
                         if state['stopped'] else '')
        columns = ['backbone', 'iteration s', 'peak MiB', 'reserved MiB', 'backbone GFLOPs (2 imgs)', 'compile s',
                   'job s', 'error']
        text += '\n' + common.markdown(state['rows'], [c for c in columns if any(c in r for r in state['rows'])])
        if state['skipped']:
            text += '\n\nNot run (budget {:.0f} s): {}'.format(args.budget, '; '.join(state['skipped']))
        common.write_results(text + '\n', state, args.markdown, args.json)
        return text

    def run_job(i, kind):
        t0 = time.perf_counter()
        try:
            result = common.run_isolated(__file__, dict(jobs[i], kind=kind, memory_here=memory_here))
        except common.Stopped as e:
            results[i] = dict({'job_s': time.perf_counter() - t0}, **(results[i] or {}), error=f'stopped ({e})')
            raise
        except Exception as e:  # noqa: BLE001  (one failed job stays in its row)
            result = dict(error=common.first_line(e))
        result['job_s'] = time.perf_counter() - t0
        return result

    try:
        for r in range(args.rounds):  # time jobs, interleaved; each keeps its fastest round
            for i, job_args in enumerate(jobs):
                if results[i] is not None and 'error' in results[i] or (r and job_args.get('compile')):
                    continue  # a compiled job runs once (in a fresh process it would compile again)
                need, left = job_cost(job_args, previous), args.budget - (time.time() - start)
                if need['total'] > left:
                    state['skipped'].append(f"{job_name(job_args)} round {r + 1} (needs ~{need['total']:.0f} s, "
                                            f'{max(left, 0):.0f} s left)')
                    continue
                result = run_job(i, 'time')
                if results[i] is None or 'error' not in result and result['seconds'] < results[i]['seconds']:
                    results[i] = result
                print(f'round {r + 1}/{args.rounds}: {job_name(job_args)} -> {result}', file=sys.stderr, flush=True)
                write()
        for i, job_args in enumerate(jobs):  # memory jobs (CPU: a fresh process each; CUDA in-process: done)
            if results[i] is None or 'error' in results[i] or memory_here or args.no_memory:
                continue
            memory = run_job(i, 'memory')
            results[i].update({'error': 'memory job: ' + memory['error']} if 'error' in memory else
                              {'peak_mib': memory['peak_mib']})
            write()
    except common.Stopped as e:
        state['stopped'] = str(e)
    finally:
        text = write()
    print(text)
    for row in state['rows']:
        print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
