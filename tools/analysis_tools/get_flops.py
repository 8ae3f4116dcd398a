# Copyright (c) mmfishnet contributors. All rights reserved.
"""Params and FLOPs of FishNet-99/150/201 next to ResNet-50/101 (mmengine's complexity analysis).

    python tools/analysis_tools/get_flops.py                  # 224x224 classifiers + 800x1344 backbones
    python tools/analysis_tools/get_flops.py --markdown out.md --archs 99 --no-detection
    python tools/analysis_tools/get_flops.py --config configs/fishnet/fishnet150_8xb32_in1k.py --shape 224 224

With ``--config`` it measures the model a config builds, as the model index (metafile.yml) states it: the
whole classifier (logits) of an mmpretrain config; the FishNet backbone of an mmdet/mmseg config, plus the
parameters of the whole detector/segmentor.

FLOPs here are mmengine's (fvcore's) count: one multiply-add of a conv or linear layer is one FLOP, and
normalization, activation, pooling and up-sampling count one per element (BN two). The authors' README
figures (4.31/6.45/10.58 G) come from their own counter; see docs/backbone.md for the comparison.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfishnet.utils.cli import run_cli  # noqa: E402


def classifier(backbone, channels, num_classes=1000):
    import torch.nn as nn

    class Classifier(nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            return self.fc(self.pool(self.backbone(x)[-1]).flatten(1))

    return Classifier()


def build(name, detection):
    """(model, label) for 'fishnetNN' / 'resnetNN', as classifier or detection backbone."""
    if name.startswith('fishnet'):
        from mmfishnet.models import FishNet
        arch = name[len('fishnet'):]
        if detection:
            return FishNet(arch=arch, out_indices=(7, 8, 9, 10)), f'FishNet-{arch} backbone'
        return classifier(FishNet(arch=arch, out_indices=(11, )), 1056), f'FishNet-{arch}'
    from mmdet.models.backbones import ResNet
    depth = int(name[len('resnet'):])
    if detection:
        return ResNet(depth=depth, out_indices=(0, 1, 2, 3)), f'ResNet-{depth} backbone'
    return classifier(ResNet(depth=depth, out_indices=(3, )), 2048), f'ResNet-{depth}'


def measure(model, shape):
    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmengine.analysis.jit_handles import elementwise_flop_counter
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, torch.rand(1, 3, *shape))
        # FishNet's NearestUpsample is an expanded view copied once (it keeps the autocast dtype), not
        # aten::upsample_nearest2d: its expand counts one per output element, as mmengine counts that op
        analyzer.set_op_handle('aten::expand', elementwise_flop_counter(0, 1))
        analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        flops = analyzer.total()
    return params, flops


def _network(cfg):
    """A model config without what changes training only (losses, train_cfg): the key of the cache."""
    if isinstance(cfg, dict):
        return {k: _network(v) for k, v in cfg.items() if not k.startswith('loss') and k != 'train_cfg'}
    return [_network(v) for v in cfg] if isinstance(cfg, (list, tuple)) else cfg


def measure_config(config, shape, cache=None):
    """What the model index states for a config: ``dict(task, params, flops)`` of the classifier, or of the
    backbone with ``model_params`` (the whole detector/segmentor) for detection/segmentation configs.
    ``cache`` (a dict) keeps measurements of identical networks at the same input for later calls."""
    from mmfishnet.utils.config_models import build_model, classifier_logits, config_task, read_config
    cache = {} if cache is None else cache
    cfg = read_config(config)
    task = config_task(cfg, config)
    part = cfg.model if task == 'classification' else cfg.model.backbone
    key = (repr(_network(part.to_dict())), tuple(shape))
    if key not in cache:
        model = classifier_logits(build_model(cfg)) if task == 'classification' else build_model(cfg, 'backbone')
        cache[key] = measure(model, shape)
    params, flops = cache[key]
    if task == 'classification':
        return dict(task=task, params=params, flops=flops)
    model_params = sum(p.numel() for p in build_model(cfg).parameters())
    return dict(task=task, params=params, flops=flops, model_params=model_params)


def report(archs, sizes, detection_size, with_detection=True):
    rows = []
    for name in archs:
        model, label = build(name, detection=False)
        params, flops = measure(model, sizes)
        rows.append((label, f'{sizes[0]}x{sizes[1]}', params, flops))
    if with_detection:
        for name in archs:
            model, label = build(name, detection=True)
            params, flops = measure(model, detection_size)
            rows.append((label, f'{detection_size[0]}x{detection_size[1]}', params, flops))
    return rows


def to_markdown(rows):
    lines = ['| model | input | params (M) | GFLOPs |', '|---|---|---:|---:|']
    lines += [f'| {label} | {size} | {params / 1e6:.2f} | {flops / 1e9:.2f} |' for label, size, params, flops in rows]
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--archs', nargs='+', default=['fishnet99', 'fishnet150', 'fishnet201', 'resnet50',
                                                        'resnet101'])
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], help='classifier input H W')
    parser.add_argument('--detection-shape', type=int, nargs=2, default=[800, 1344],
                        help='detection backbone input H W (800x1333 padded to a multiple of 32)')
    parser.add_argument('--no-detection', action='store_true', help='skip the detection backbones')
    parser.add_argument('--markdown', help='also write the table to this Markdown file')
    parser.add_argument('--config', nargs='+', help='measure these configs instead (at --shape)')
    args = parser.parse_args(argv)
    if args.config:
        for config in args.config:
            r = measure_config(config, tuple(args.shape))
            whole = f", whole model {r['model_params']} params" if 'model_params' in r else ''
            part = 'classifier' if r['task'] == 'classification' else 'backbone'
            print(f"{config}: {part} at {args.shape[0]}x{args.shape[1]}: {r['params']} params "
                  f"({r['params'] / 1e6:.2f} M), {r['flops']} FLOPs ({r['flops'] / 1e9:.2f} G){whole}")
        return
    archs = [a if a.startswith(('fishnet', 'resnet')) else f'fishnet{a}' for a in args.archs]
    rows = report(archs, tuple(args.shape), tuple(args.detection_shape), not args.no_detection)
    table = to_markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    sys.exit(run_cli(main))
