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
first iteration, which compiles, is the job's warm-up, and its time is reported.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

CONFIGS = {
    'FishNet-150': osp.join(common.ROOT, 'configs', 'mask_rcnn_fishnet150_fpn_1x_coco.py'),
    'ResNet-50': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}


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
    if args.get('compile'):
        from mmfishnet.engine.fast_path import compile_modules
        compile_modules(model, ['backbone', 'neck'])

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
        import time
        t0 = time.perf_counter()
        step()
        if args['device'] == 'cuda':
            torch.cuda.synchronize()
        compile_seconds = time.perf_counter() - t0
    result = common.measure_step(step, args['kind'], args['iters'], args['device'])
    result['compile_s'] = compile_seconds
    if args['kind'] == 'time':
        result['backbone_gflops'] = common.forward_gflops(model.backbone, (1, 3, h, w)) * 2
    return result


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
    parser.add_argument('--markdown')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    if args.in_process:
        common.run_in_process(job, args.device)
    jobs = [dict(model=name, device=args.device, height=args.height, width=args.width, iters=args.iters,
                 amp=args.amp) for name in CONFIGS]
    if args.nchw:
        jobs.append(dict(jobs[0], nchw=True))
    if args.compile_backbone:
        jobs += [dict(job, compile=True) for job in jobs[:2]]
    times = common.run_rounds(__file__, [dict(job, kind='time') for job in jobs], args.rounds)
    rows = []
    for job_args, result in zip(jobs, times):
        memory = common.run_isolated(__file__, dict(job_args, kind='memory'))
        name = job_args['model'] + (' nchw' if job_args.get('nchw') else '') + (
            ' compiled' if job_args.get('compile') else '')
        rows.append({'backbone': name, 'iteration s': result['seconds'], 'peak MiB': memory['peak_mib'],
                     'backbone GFLOPs (2 imgs)': result['backbone_gflops']})
        if job_args.get('compile'):
            rows[-1]['compile s'] = result['compile_s']
        print(json.dumps(rows[-1]), flush=True)
    fish, res = rows[:2]
    summary = dict(backbone='FishNet-150 / ResNet-50', **{
        'iteration s': fish['iteration s'] / res['iteration s'], 'peak MiB': fish['peak MiB'] / res['peak MiB'],
        'backbone GFLOPs (2 imgs)': fish['backbone GFLOPs (2 imgs)'] / res['backbone GFLOPs (2 imgs)']})
    rows.append(summary)
    if args.compile_backbone:
        fish_c, res_c = (r for r in rows if r['backbone'].endswith(' compiled'))
        rows.append({'backbone': 'FishNet-150 / ResNet-50, compiled', 'iteration s':
                     fish_c['iteration s'] / res_c['iteration s'], 'peak MiB': fish_c['peak MiB'] / res_c['peak MiB'],
                     'backbone GFLOPs (2 imgs)': summary['backbone GFLOPs (2 imgs)']})
    precision = 'AMP (fp16 autocast, dynamic loss scale)' if args.amp else 'fp32'
    header = (common.header(__file__, argv) + f'Mask R-CNN + FPN training iteration, 2 images of '
              f'{args.height}x{args.width}, {precision}; last row: FishNet-150 / ResNet-50 as their configs build them.\n')
    columns = ['backbone', 'iteration s', 'peak MiB', 'backbone GFLOPs (2 imgs)']
    common.emit(header, rows, columns + (['compile s'] if args.compile_backbone else []), args.markdown)


if __name__ == '__main__':
    main()
