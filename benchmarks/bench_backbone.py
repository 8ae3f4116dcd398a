# Copyright (c) mmfishnet contributors. All rights reserved.
"""Backbone speed and memory: FishNet-99/150/201 against mmdet's ResNet-50/101, in one run.

    python benchmarks/bench_backbone.py                       # the full table (CPU: ~6 min on 2 cores)
    python benchmarks/bench_backbone.py --models resnet50 fishnet150 --variants   # + layout, with_cp, compile (~10 min)
    python benchmarks/bench_backbone.py --device cuda --amp   # the same on a GPU (AMP: fp16 autocast)
    python benchmarks/bench_backbone.py --device cuda --batch 32 --modes train --variants layout \
        --resnet-impl torchvision --in-process              # what tools/gpu_check.sh runs
    python benchmarks/bench_backbone.py --markdown docs/bench_backbone.md

Per model (classification form, 224x224): a training step (forward + backward + SGD step, batch 8) and
inference at batch 1 and 8: images/s, milliseconds per forward GFLOP, the peak memory of a training step,
and the ratio of each to ResNet-50 measured in the same run. Each model runs as its users get it: FishNet
with its default ``channels_last=None`` (channels-last on CPU with PyTorch's own layers), mmdet's ResNet in
the default format. ``--variants`` adds, per model, the other memory format, ``with_cp`` and
``torch.compile`` (``--variants layout with_cp`` picks some). ``--resnet-impl torchvision`` takes the
ResNets from torchvision (the same networks: the "pytorch" style, stride in the 3x3 conv, as mmdet's
default), for environments where mmdet's package cannot be imported (it needs mmcv's compiled ops).
On CUDA, fp32 means TF32 convolutions and matrix products. The machine's dense 3x3 conv throughput is measured alongside, so that every result
also reads as a fraction of what the machine can do. Timing and memory are explained in ``common.py``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

MODELS = ['resnet50', 'resnet101', 'fishnet99', 'fishnet150', 'fishnet201']
# Variants per model family; each name is also the flag a job carries. 'layout' is the other memory format.
VARIANTS = dict(resnet=['channels_last', 'with_cp', 'compile'], fishnet=['nchw', 'with_cp', 'compile'])
VARIANT_CHOICES = ['layout', 'with_cp', 'compile']


def variants_of(name: str, chosen) -> list:
    family = 'fishnet' if name.startswith('fishnet') else 'resnet'
    return [v for v in VARIANTS[family] if (v in ('channels_last', 'nchw') and 'layout' in chosen) or v in chosen]


def build(name: str, with_cp: bool = False, channels_last=None, resnet_impl: str = 'mmdet'):
    """The classifier form of a backbone. ``channels_last`` (FishNet's argument) is None, True or False;
    for ResNet, True converts the input to channels-last (its layers then keep that format)."""
    sys.path.insert(0, osp.join(common.ROOT, 'tools', 'analysis_tools'))
    from get_flops import classifier
    if name.startswith('fishnet'):
        from mmfishnet.models import FishNet
        return classifier(FishNet(arch=name[7:], out_indices=(11, ), with_cp=with_cp,
                                  channels_last=channels_last), 1056)
    if resnet_impl == 'torchvision':
        import torchvision
        if with_cp:
            raise ValueError("torchvision's ResNet has no with_cp")
        model = getattr(torchvision.models, name)()
    else:
        from mmdet.models.backbones import ResNet
        model = classifier(ResNet(depth=int(name[6:]), out_indices=(3, ), with_cp=with_cp), 2048)
    if channels_last:
        import torch
        model.register_forward_pre_hook(lambda _, args: (args[0].contiguous(memory_format=torch.channels_last), ))
    return model


def job(args: dict) -> dict:
    """One measurement, in this (fresh) process: ``kind`` is 'flops', 'time' or 'memory'."""
    import torch
    device, mode, batch, kind = args['device'], args['mode'], args['batch'], args['kind']
    channels_last = True if args.get('channels_last') else False if args.get('nchw') else None
    common.set_tf32(device)
    model = build(args['model'], with_cp=args.get('with_cp', False), channels_last=channels_last,
                  resnet_impl=args.get('resnet_impl', 'mmdet')).to(device)
    shape = (batch, 3, args['size'], args['size'])
    if kind == 'flops':
        return dict(gflops=common.forward_gflops(model, shape))
    x = torch.rand(*shape, device=device)
    target = torch.randint(0, 1000, (batch, ), device=device)
    runner = torch.compile(model) if args.get('compile') else model
    amp = torch.autocast(device_type=device, dtype=torch.float16 if device == 'cuda' else torch.bfloat16,
                         enabled=bool(args.get('amp')))
    if mode == 'train':
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step():
            # Gradients stay allocated between steps, so a step's memory is its activations and temporaries.
            opt.zero_grad(set_to_none=False)
            with amp:
                loss = torch.nn.functional.cross_entropy(runner(x), target)
            loss.backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad(), amp:
                runner(x)

    result = common.measure_step(step, kind, args['iters'], device, warmup=args.get('warmup', 1))
    if kind == 'time':
        result['images_per_s'] = batch / result['seconds']
    return result


MODES = dict(train=('train', 'train'), infer1=('test', 1), infer8=('test', 8))


def measure(models, device, size, iters, rounds, variants=(), amp=False, batch=8, modes=tuple(MODES),
            resnet_impl='mmdet', warmup=1):
    settings = []  # (row name, model, flags)
    for name in models:
        settings.append((name, name, {}))
        for variant in variants_of(name, variants):
            settings.append((f'{name} {variant}', name, {variant: True}))
    common_args = dict(device=device, size=size, iters=iters, amp=amp, resnet_impl=resnet_impl, warmup=warmup)
    time_jobs, keys = [], []
    for row_name, name, flags in settings:
        for key in modes:
            mode, mode_batch = MODES[key]
            mode_batch = batch if mode_batch == 'train' else mode_batch
            if mode == 'test' and 'with_cp' in flags:
                continue  # checkpointing changes nothing without gradients
            time_jobs.append(dict(model=name, mode=mode, batch=mode_batch, kind='time', **flags, **common_args))
            keys.append((row_name, key))
    times = common.run_rounds(__file__, time_jobs, rounds)
    gflops = {name: common.run_isolated(__file__, dict(model=name, mode='test', batch=1, kind='flops',
                                                       **common_args))['gflops'] for name in models}
    rows = {row_name: dict(model=row_name, **{'GFLOPs/img': gflops[name]}) for row_name, name, _ in settings}
    for (row_name, key), result in zip(keys, times):
        rows[row_name][f'{key} img/s'] = result['images_per_s']
    for row_name, name, flags in settings:
        row = rows[row_name]
        if 'train' in modes:
            row['train ms/GFLOP'] = 1000 / row['train img/s'] / gflops[name]
            row['train peak MiB'] = common.run_isolated(__file__, dict(
                model=name, mode='train', batch=batch, kind='memory', **flags, **common_args))['peak_mib']
        print(json.dumps(row), flush=True)
    rows = list(rows.values())
    base = next((r for r in rows if r['model'] == 'resnet50'), rows[0])
    for row in rows:
        if 'train' in modes:
            row['ms/GFLOP vs R50'] = row['train ms/GFLOP'] / base['train ms/GFLOP']
            row['img/s vs R50'] = row['train img/s'] / base['train img/s']
            row['peak vs R50'] = row['train peak MiB'] / base['train peak MiB']
    return rows


COLUMNS = ['model', 'GFLOPs/img', 'train img/s', 'img/s vs R50', 'train ms/GFLOP', 'ms/GFLOP vs R50',
           'train peak MiB', 'peak vs R50', 'infer1 img/s', 'infer8 img/s']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--job', help=argparse.SUPPRESS)
    parser.add_argument('--models', nargs='+', default=MODELS)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--iters', type=int, default=3, help='timed steps per job (the fastest counts)')
    parser.add_argument('--rounds', type=int, default=2, help='interleaved rounds of all time jobs')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--variants', nargs='*', choices=VARIANT_CHOICES,
                        help='also these variants of each model (alone: all of them): the other memory format '
                        '(layout), with_cp, torch.compile')
    parser.add_argument('--batch', type=int, default=8, help='training batch size')
    parser.add_argument('--modes', nargs='+', choices=list(MODES), default=list(MODES))
    parser.add_argument('--resnet-impl', choices=['mmdet', 'torchvision'], default='mmdet')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps before the timed ones')
    parser.add_argument('--in-process', action='store_true',
                        help='CUDA only: run every job in this process (no fresh interpreter per job)')
    parser.add_argument('--markdown', help='write the table to this file')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    if args.in_process:
        common.run_in_process(job, args.device)
    variants = VARIANT_CHOICES if args.variants == [] else (args.variants or [])
    conv = common.conv_throughput(args.device)
    rows = measure(args.models, args.device, args.size, args.iters, args.rounds, variants, args.amp, args.batch,
                   args.modes, args.resnet_impl, args.warmup)
    columns = [c for c in COLUMNS if any(c in row for row in rows)]
    if 'train' in args.modes:
        for row in rows:
            row['% of conv peak'] = 100 * (1000 / row['train ms/GFLOP']) * 3 / conv  # fwd+bwd ~ 3x fwd
        columns.append('% of conv peak')
    precision = ('AMP (fp16 autocast)' if args.device == 'cuda' else 'AMP (bf16 autocast)') if args.amp else (
        'fp32 (TF32 on CUDA)' if args.device == 'cuda' else 'fp32')
    header = common.header(__file__, argv, f'. Dense 3x3 conv: {conv:.1f} GFLOP/s (multiply-adds). '
                           f'{precision}, training batch {args.batch}, {args.size}x{args.size}, ResNets from '
                           f'{args.resnet_impl}')
    common.emit(header, rows, columns, args.markdown)


if __name__ == '__main__':
    main()
