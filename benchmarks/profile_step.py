# Copyright (c) mmfishnet contributors. All rights reserved.
"""Where the time of a training step goes: PyTorch's profiler, op self-times grouped by kind.

    python benchmarks/profile_step.py                          # ResNet-50 vs FishNet-150, both formats
    python benchmarks/profile_step.py --models fishnet150 --markdown docs/profile_step.md

Profiles forward + backward of the classifier form (batch 8, 224x224; the optimizer step is left out: it
costs the same per parameter in any network) and reports milliseconds per forward GFLOP for each kind of
op, so that networks of different size compare directly. A setting is a model and a memory format:
``nchw`` (contiguous) or ``cl`` (channels-last; FishNet's default on CPU).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import common  # noqa: E402

# (kind, test on the aten op name); the first match wins, so the order matters.
KINDS = [
    ('conv backward', lambda n: 'conv' in n and 'backward' in n),
    ('conv forward', lambda n: 'conv' in n),
    ('norm', lambda n: 'norm' in n),
    ('ReLU', lambda n: n in ('aten::threshold_backward', 'aten::relu_', 'aten::relu', 'aten::clamp_min_',
                             'aten::clamp_min')),
    ('pooling', lambda n: 'pool' in n),
    ('up-sampling', lambda n: 'upsample' in n),
    ('concatenation', lambda n: n == 'aten::cat'),
    ('channel reduction (sum)', lambda n: n == 'aten::sum'),
    ('residual add, gradient accumulation', lambda n: n in ('aten::add', 'aten::add_')),
    ('copies (layout, contiguous)', lambda n: n in ('aten::copy_', 'aten::clone', 'aten::contiguous')),
    ('allocation, fill', lambda n: n in ('aten::empty', 'aten::empty_like', 'aten::fill_', 'aten::zero_',
                                         'aten::zeros', 'aten::empty_strided', 'aten::resize_')),
]
OTHER = 'other (loss, linear, attention, autograd)'


def job(args: dict) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench_backbone import build
    name, layout = args['model'], args['layout']
    model = build(name, channels_last=(layout == 'cl'))
    shape = (args['batch'], 3, args['size'], args['size'])
    gflops = common.forward_gflops(model, shape)
    model.train()
    x = torch.rand(*shape)
    target = torch.randint(0, 1000, (shape[0], ))

    def step():
        model.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(model(x), target).backward()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args['steps']):
            step()
    seconds = {}
    for event in prof.key_averages():
        if not event.key.startswith('aten::'):
            continue  # autograd/record_function wrappers: their time is in the aten ops they call
        kind = next((k for k, test in KINDS if test(event.key)), OTHER)
        seconds[kind] = seconds.get(kind, 0.0) + event.self_cpu_time_total / 1e6 / args['steps']
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6 / args['steps']
    seconds[OTHER] = seconds.get(OTHER, 0.0) + total - sum(seconds.values())
    return dict(seconds=seconds, total=total, gflops=gflops)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--job', help=argparse.SUPPRESS)
    parser.add_argument('--models', nargs='+', default=['resnet50', 'fishnet150'])
    parser.add_argument('--layouts', nargs='+', default=['nchw', 'cl'], choices=['nchw', 'cl'])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=2, help='profiled steps (after one warm-up step)')
    parser.add_argument('--markdown', help='write the table to this file')
    args = parser.parse_args(argv)
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    results = {}
    for name in args.models:
        for layout in args.layouts:
            results[f'{name} {layout}'] = common.run_isolated(__file__, dict(
                model=name, layout=layout, size=args.size, batch=args.batch, steps=args.steps))
            print(f'{name} {layout}: {results[f"{name} {layout}"]["total"]:.2f} s/step', flush=True)
    rows = []
    for kind in [k for k, _ in KINDS] + [OTHER, 'total']:
        row = {'op kind': kind}
        for setting, result in results.items():
            spent = result['total'] if kind == 'total' else result['seconds'].get(kind, 0.0)
            row[setting] = 1000 * spent / result['gflops']  # gflops: the whole batch's
        rows.append(row)
    header = (common.header(__file__, argv) + f'Milliseconds per forward GFLOP of a training step '
              f'(forward + backward, batch {args.batch}, {args.size}x{args.size}), by op kind '
              f'(profiler self-time).\n')
    common.emit(header, rows, ['op kind'] + list(results), args.markdown)


if __name__ == '__main__':
    main()
