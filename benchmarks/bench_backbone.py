# Copyright (c) mmfishnet contributors. All rights reserved.
"""Backbone speed and memory: FishNet-99/150/201 against mmdet's ResNet-50/101, in one run.

    python benchmarks/bench_backbone.py                       # the full table (CPU: ~5 min on 2 cores)
    python benchmarks/bench_backbone.py --variants            # + with_cp / channels_last / torch.compile
    python benchmarks/bench_backbone.py --device cuda --amp   # the same on a GPU (AMP: fp16 autocast)
    python benchmarks/bench_backbone.py --markdown docs/bench_backbone.md

Per model (classification form, 224x224): a training step (forward + backward + SGD step, batch 8) and
inference at batch 1 and 8: images/s, milliseconds per forward GFLOP, peak memory of the step, and the
ratio of each to ResNet-50 measured in the same run. Peak memory: on CUDA torch's max_memory_allocated;
on CPU the rise of the process's peak RSS over its RSS before the first step (each job runs in its own
process). The machine's dense 3x3 conv throughput is measured alongside, so that every result also reads
as a fraction of what the machine can do.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

MODELS = ['resnet50', 'resnet101', 'fishnet99', 'fishnet150', 'fishnet201']


def build(name: str, with_cp: bool = False):
    sys.path.insert(0, osp.join(common.ROOT, 'tools', 'analysis_tools'))
    from get_flops import classifier
    if name.startswith('fishnet'):
        from mmfishnet.models import FishNet
        return classifier(FishNet(arch=name[7:], out_indices=(11, ), with_cp=with_cp), 1056)
    from mmdet.models.backbones import ResNet
    return classifier(ResNet(depth=int(name[6:]), out_indices=(3, ), with_cp=with_cp), 2048)


def job(args: dict) -> dict:
    """One measurement, in this (fresh) process."""
    import torch
    device, mode, batch = args['device'], args['mode'], args['batch']
    model = build(args['model'], with_cp=args.get('with_cp', False)).to(device)
    shape = (batch, 3, args['size'], args['size'])
    gflops = common.forward_gflops(build(args['model']), (1, ) + shape[1:]) * batch
    memory_format = torch.channels_last if args.get('channels_last') else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.rand(*shape, device=device).to(memory_format=memory_format)
    target = torch.randint(0, 1000, (batch, ), device=device)
    runner = torch.compile(model) if args.get('compile') else model
    amp = torch.autocast(device_type=device, dtype=torch.float16 if device == 'cuda' else torch.bfloat16,
                         enabled=bool(args.get('amp')))
    if mode == 'train':
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            opt.zero_grad(set_to_none=True)
            with amp:
                loss = torch.nn.functional.cross_entropy(runner(x), target)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), amp:
                runner(x)

    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    base = common.rss_mib()
    seconds = common.timed(step, args['iters'], warmup=args.get('warmup', 1), device=device)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda'
            else common.peak_rss_mib() - base)
    return dict(seconds=seconds, images_per_s=batch / seconds, gflops=gflops,
                ms_per_gflop=1000 * seconds / gflops, peak_mib=peak)


def measure(models, device, size, iters, variants=(), amp=False):
    rows = []
    for name in models:
        for variant in [{}] + list(variants):
            row = dict(model=name + (' ' + '+'.join(variant) if variant else ''))
            for mode, batch, key in (('train', 8, 'train'), ('test', 1, 'infer1'), ('test', 8, 'infer8')):
                if variant and mode != 'train' and 'with_cp' in variant:
                    continue  # checkpointing changes nothing without gradients
                result = common.run_isolated(__file__, dict(
                    model=name, mode=mode, batch=batch, device=device, size=size, iters=iters, amp=amp,
                    **{k: True for k in variant}))
                row[f'{key} img/s'] = result['images_per_s']
                if mode == 'train':
                    row['GFLOPs/img'] = result['gflops'] / batch
                    row['train ms/GFLOP'] = result['ms_per_gflop']
                    row['train peak MiB'] = result['peak_mib']
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = next(r for r in rows if r['model'] == 'resnet50') if any(r['model'] == 'resnet50' for r in rows) \
        else rows[0]
    for row in rows:
        row['ms/GFLOP vs R50'] = row['train ms/GFLOP'] / base['train ms/GFLOP']
        row['peak vs R50'] = row['train peak MiB'] / base['train peak MiB']
    return rows


COLUMNS = ['model', 'GFLOPs/img', 'train img/s', 'train ms/GFLOP', 'ms/GFLOP vs R50', 'train peak MiB',
           'peak vs R50', 'infer1 img/s', 'infer8 img/s']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--job', help=argparse.SUPPRESS)
    parser.add_argument('--models', nargs='+', default=MODELS)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--variants', action='store_true',
                        help='also with_cp, channels_last and torch.compile for each model')
    parser.add_argument('--markdown', help='write the table to this file')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    variants = [('with_cp', ), ('channels_last', ), ('compile', )] if args.variants else []
    conv = common.conv_throughput(args.device)
    rows = measure(args.models, args.device, args.size, args.iters, variants, args.amp)
    for row in rows:
        row['% of conv peak'] = 100 * (1000 / row['train ms/GFLOP']) * 3 / conv  # fwd+bwd ~ 3x fwd
    header = (f'Machine: {common.machine()}. Dense 3x3 conv: {conv:.1f} GFLOP/s (multiply-adds).\n'
              f'Command: python benchmarks/bench_backbone.py {" ".join(argv or sys.argv[1:])}\n')
    common.emit(header, rows, COLUMNS + ['% of conv peak'], args.markdown)


if __name__ == '__main__':
    main()
