# Copyright (c) mmfishnet contributors. All rights reserved.
"""Export a FishNet model to ONNX with torch's exporter (torch.export), check the graph, and compare
onnxruntime with PyTorch on the same inputs.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] --out FILE.onnx [--shape H W]

- classification (mmpretrain) configs: the whole classifier, input the normalised image, output ``logits``;
- detection (mmdet) and segmentation (mmseg) configs: the FishNet backbone, one output per ``out_indices``
  entry, named after its stage (``body3``, ``head1`` ...). Necks, heads and post-processing stay in Python.

The batch and the sides are dynamic (sides: any multiple of 32, declared ``32 * Dim``). The graph is
checked with ``onnx.checker`` (full check, with shape inference), then run in onnxruntime (CPU) at
``--shape`` and at a second size (other batch and sides) against PyTorch; the largest difference relative
to the largest output magnitude is printed per output, and above ``--tolerance`` the tool fails (exit 1).
Without CHECKPOINT the model keeps the config's own initialisation (enough to check an export).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402

DEFAULT_TOLERANCE = 1e-4  # relative to the largest |output|; fp32 onnxruntime vs PyTorch on CPU: ~1e-6


def build(config: str, checkpoint=None, cfg_options=None):
    """(module, output names, task) for a config: the classifier's logits or the FishNet backbone."""
    from mmfishnet.utils.config_models import (build_model, classifier_logits, config_task, load_weights,
                                                read_config)
    cfg = read_config(config, cfg_options)
    task = config_task(cfg, config)
    part = 'model' if task == 'classification' else 'backbone'
    if cfg.model.get('backbone', {}).get('type') != 'FishNet':
        raise UserError(f'{config}: model.backbone is not a FishNet')
    model = build_model(cfg, part=part)
    if checkpoint:
        load_weights(model, checkpoint, part=part)
    if part == 'model':
        return classifier_logits(model), ['logits'], task
    return model, [info['module'] for info in model.feature_info], task


def export(module, out: str, shape, output_names, opset=None):
    """``torch.onnx.export`` (torch.export based) with a dynamic batch and dynamic sides (multiples of 32)."""
    import torch
    from torch.export import Dim
    divisor = 32
    if shape[0] % divisor or shape[1] % divisor:
        raise UserError(f'--shape {shape[0]} {shape[1]}: sides must be multiples of {divisor}')
    example = torch.rand(2, 3, *shape)  # batch 2: a batch of 1 would be specialised to a constant
    dynamic_shapes = {'x': {0: Dim('batch', min=1, max=1024), 2: divisor * Dim('h', min=1, max=256),
                            3: divisor * Dim('w', min=1, max=256)}}
    kwargs = dict(opset_version=opset) if opset else {}
    with torch.no_grad():
        torch.onnx.export(module, (example, ), out, dynamo=True, dynamic_shapes=dynamic_shapes,
                          input_names=['input'], output_names=output_names, external_data=False, **kwargs)


def check_graph(path: str) -> None:
    import onnx
    onnx.checker.check_model(path, full_check=True)


def compare(module, path: str, shapes, tolerance: float = DEFAULT_TOLERANCE, output_names=None, log=print):
    """Run the ONNX file in onnxruntime and the module in PyTorch on the same random inputs of each shape
    (N, 3, H, W); returns the largest relative difference (max |ort - torch| / max |torch|) over all."""
    import numpy as np
    import onnxruntime as ort
    import torch
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape, generator=generator)
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, (tuple, list)) else (expected, )
        got = session.run(None, {input_name: x.numpy()})
        if len(got) != len(expected):
            raise UserError(f'{path} has {len(got)} outputs, PyTorch gives {len(expected)}')
        for i, (ort_out, ref) in enumerate(zip(got, expected)):
            ref = ref.numpy()
            if ort_out.shape != ref.shape:
                raise UserError(f'output {i} at input {tuple(shape)}: onnxruntime gives shape {ort_out.shape}, '
                                f'PyTorch {ref.shape}')
            scale = max(float(np.abs(ref).max()), 1e-12)
            diff = float(np.abs(ort_out - ref).max())
            name = output_names[i] if output_names else str(i)
            log(f'input {tuple(shape)} output {name} {tuple(ref.shape)}: max |onnxruntime - torch| = {diff:.3g} '
                f'({diff / scale:.3g} of max |torch| = {scale:.3g})')
            worst = max(worst, diff / scale)
    return worst


def main(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='an mmpretrain, mmdet or mmseg config with a FishNet backbone')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint of the whole model (Runner or converted)')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'),
                        help='input height and width of the example and the first comparison (multiples of 32)')
    parser.add_argument('--tolerance', type=float, default=DEFAULT_TOLERANCE,
                        help='largest accepted |onnxruntime - torch| relative to max |torch| '
                        f'(default {DEFAULT_TOLERANCE})')
    parser.add_argument('--opset', type=int, help="ONNX opset (default: the exporter's)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    args = parser.parse_args(argv)
    if not args.out.endswith('.onnx'):
        raise UserError(f'--out {args.out}: the file name should end in .onnx')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise UserError(f'checkpoint {args.checkpoint} does not exist')

    module, output_names, task = build(args.config, args.checkpoint, args.cfg_options)
    h, w = args.shape
    print(f'exporting the {"classifier (logits)" if task == "classification" else "FishNet backbone"} of '
          f'{args.config} to {args.out}: outputs {output_names}, dynamic batch and sides (multiples of 32)')
    export(module, args.out, (h, w), output_names, args.opset)
    check_graph(args.out)
    print(f'onnx.checker: {args.out} is valid')
    worst = compare(module, args.out, [(1, 3, h, w), (3, 3, h + 32, w + 64)], args.tolerance, output_names)
    if worst > args.tolerance:
        print(f'FAILED: largest relative difference {worst:.3g} > tolerance {args.tolerance:g}', file=sys.stderr)
        sys.exit(1)
    print(f'ok: largest relative difference {worst:.3g} <= tolerance {args.tolerance:g} (onnxruntime, CPU)')


if __name__ == '__main__':
    sys.exit(run_cli(main))
