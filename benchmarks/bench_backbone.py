# Copyright (c) mmfishnet contributors. All rights reserved.
"""Backbone speed and memory: FishNet-99/150/201 against mmdet's ResNet-50/101, in one run.

    python benchmarks/bench_backbone.py                       # the full table (CPU: ~6 min on 2 cores)
    python benchmarks/bench_backbone.py --models resnet50 fishnet150 --variants   # + layout, with_cp, compile (~10 min)
    python benchmarks/bench_backbone.py --device cuda --amp   # the same on a GPU (AMP: fp16 autocast)
    python benchmarks/bench_backbone.py --markdown docs/bench_backbone.md

Per model (classification form, 224x224): a training step (forward + backward + SGD step, batch 8) and
inference at batch 1 and 8: images/s, milliseconds per forward GFLOP, the peak memory of a training step,
and the ratio of each to ResNet-50 measured in the same run. Each model runs as its users get it: FishNet
with its default ``channels_last=None`` (channels-last on CPU with PyTorch's own layers), mmdet's ResNet in
the default format. ``--variants`` adds, per model, the other memory format, ``with_cp`` and
``torch.compile``. The machine's dense 3x3 conv throughput is measured alongside, so that every result
also reads as a fraction of what the machine can do. Timing and memory are explained in ``common.py``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

MODELS = ['resnet50', 'resnet101', 'fishnet99', 'fishnet150', 'fishnet201']
# Variants per model family; each name is also the flag a job carries.
VARIANTS = dict(resnet=['channels_last', 'with_cp', 'compile'], fishnet=['nchw', 'with_cp', 'compile'])


def build(name: str, with_cp: bool = False, channels_last=None):
    """The classifier form of a backbone. ``channels_last`` (FishNet's argument) is None, True or False;
    for ResNet, True converts the input to channels-last (its layers then keep that format)."""
    sys.path.insert(0, osp.join(common.ROOT, 'tools', 'analysis_tools'))
    from get_flops import classifier
    if name.startswith('fishnet'):
        from mmfishnet.models import FishNet
        return classifier(FishNet(arch=name[7:], out_indices=(11, ), with_cp=with_cp,
                                  channels_last=channels_last), 1056)
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
    model = build(args['model'], with_cp=args.get('with_cp', False), channels_last=channels_last).to(device)
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


def measure(models, device, size, iters, rounds, with_variants=False, amp=False):
    settings = []  # (row name, model, flags)
    for name in models:
        settings.append((name, name, {}))
        if with_variants:
            for variant in VARIANTS['fishnet' if name.startswith('fishnet') else 'resnet']:
                settings.append((f'{name} {variant}', name, {variant: True}))
    common_args = dict(device=device, size=size, iters=iters, amp=amp)
    time_jobs, keys = [], []
    for row_name, name, flags in settings:
        for mode, batch, key in (('train', 8, 'train'), ('test', 1, 'infer1'), ('test', 8, 'infer8')):
            if mode == 'test' and 'with_cp' in flags:
                continue  # checkpointing changes nothing without gradients
            time_jobs.append(dict(model=name, mode=mode, batch=batch, kind='time', **flags, **common_args))
            keys.append((row_name, key))
    times = common.run_rounds(__file__, time_jobs, rounds)
    gflops = {name: common.run_isolated(__file__, dict(model=name, mode='test', batch=1, kind='flops',
                                                       **common_args))['gflops'] for name in models}
    rows = {row_name: dict(model=row_name, **{'GFLOPs/img': gflops[name]}) for row_name, name, _ in settings}
    for (row_name, key), result in zip(keys, times):
        rows[row_name][f'{key} img/s'] = result['images_per_s']
    for row_name, name, flags in settings:
        row = rows[row_name]
        row['train ms/GFLOP'] = 1000 / row['train img/s'] / gflops[name]
        row['train peak MiB'] = common.run_isolated(__file__, dict(
            model=name, mode='train', batch=8, kind='memory', **flags, **common_args))['peak_mib']
        print(json.dumps(row), flush=True)
    rows = list(rows.values())
    base = next((r for r in rows if r['model'] == 'resnet50'), rows[0])
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
    parser.add_argument('--iters', type=int, default=3, help='timed steps per job (the fastest counts)')
    parser.add_argument('--rounds', type=int, default=2, help='interleaved rounds of all time jobs')
    parser.add_argument('--amp', action='store_true', help='autocast (fp16 on CUDA, bf16 on CPU)')
    parser.add_argument('--variants', action='store_true',
                        help='also the other memory format, with_cp and torch.compile for each model')
    parser.add_argument('--markdown', help='write the table to this file')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    conv = common.conv_throughput(args.device)
    rows = measure(args.models, args.device, args.size, args.iters, args.rounds, args.variants, args.amp)
    for row in rows:
        row['% of conv peak'] = 100 * (1000 / row['train ms/GFLOP']) * 3 / conv  # fwd+bwd ~ 3x fwd
    header = common.header(__file__, argv, f'. Dense 3x3 conv: {conv:.1f} GFLOP/s (multiply-adds)')
    common.emit(header, rows, COLUMNS + ['% of conv peak'], args.markdown)


if __name__ == '__main__':
    main()
