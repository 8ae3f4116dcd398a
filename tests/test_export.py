"""ONNX export (tools/deployment/pytorch2onnx.py) of FishNet-99: the whole classifier of a classification
config and the backbone of a detection config, each exported once with a dynamic batch and dynamic sides and
then run in onnxruntime at two input sizes against PyTorch, here, independently of the tool's own check."""
import os

import numpy as np
import pytest
import torch

from helpers import ROOT, run_tool

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

CLS_CONFIG = 'configs/toy/fishnet99_1xb16_toy-cls.py'
DET_CONFIG = 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py'


def _model_and_checkpoint(config, part, path):
    """A model of ``config`` with fresh random weights, saved as a whole-model checkpoint at ``path``; returns
    the module that the exporter exports (the classifier's logits or the backbone) with those weights."""
    from mmfishnet.utils.config_models import build_model, classifier_logits, read_config
    cfg = read_config(os.path.join(ROOT, config))
    torch.manual_seed(1)
    model = build_model(cfg)
    for m in model.modules():  # non-trivial BN statistics, so that a wrong BN export would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return classifier_logits(model) if part == 'model' else model.backbone.eval()


def _graph_dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _run_both(module, onnx_path, shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    with torch.no_grad():
        expected = module(x)
    expected = expected if isinstance(expected, tuple) else (expected, )
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return got, [e.numpy() for e in expected]


@pytest.mark.parametrize('config, part, outputs', [
    (CLS_CONFIG, 'model', ['logits']),
    (DET_CONFIG, 'backbone', ['body3', 'head1', 'head2', 'head3']),
])
def test_export_runs_in_onnxruntime_at_two_sizes(tmp_path, config, part, outputs):
    """Catches: an export that fixes the batch or the sides (the second size would fail or be wrong), the
    wrong part exported (backbone instead of logits, or missing out_indices), weights not loaded from the
    checkpoint, BN exported in training mode, and FishNet's input checks written so that torch.export cannot
    prove them from ``32 * Dim`` sides (e.g. refusing every symbolic size)."""
    module = _model_and_checkpoint(config, part, tmp_path / 'model.pth')
    out = tmp_path / 'model.onnx'
    proc = run_tool('tools/deployment/pytorch2onnx.py', config, str(tmp_path / 'model.pth'), '--out', str(out),
                    '--shape', '64', '96')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'ok: largest relative difference' in proc.stdout

    graph = onnx.load(str(out)).graph
    assert [o.name for o in graph.output] == outputs
    batch, channels, height, width = _graph_dims(graph.input[0])
    assert channels == 3 and all(isinstance(d, str) for d in (batch, height, width)), _graph_dims(graph.input[0])

    # independent of the tool's own comparison: two batches and sizes, neither the export's example (2x64x96)
    for shape in [(1, 3, 32, 64), (3, 3, 128, 96)]:
        got, expected = _run_both(module, out, shape)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-4 * float(np.abs(e).max()))


def test_export_bad_input(tmp_path):
    """Catches: sides that are not multiples of 32 accepted, and a checkpoint of another arch exported
    silently instead of a one-line error: FishNet-99's tensors are a subset of FishNet-150's with the same
    shapes, so a check of missing or misshapen tensors alone loads a FishNet-150 checkpoint into FishNet-99."""
    proc = run_tool('tools/deployment/pytorch2onnx.py', CLS_CONFIG, '--out', str(tmp_path / 'x.onnx'),
                    '--shape', '70', '64')
    assert proc.returncode == 2 and 'multiples of 32' in proc.stderr and 'Traceback' not in proc.stderr

    from mmfishnet.models import FishNet
    state = {f'backbone.{k}': v for k, v in FishNet(arch='150', out_indices=(11, )).state_dict().items()}
    torch.save({'state_dict': state}, tmp_path / 'fishnet150.pth')
    proc = run_tool('tools/deployment/pytorch2onnx.py', DET_CONFIG, str(tmp_path / 'fishnet150.pth'), '--out',
                    str(tmp_path / 'x.onnx'))
    assert proc.returncode == 2 and 'does not fit the model of this config' in proc.stderr, proc.stderr[-2000:]
    assert 'tensors are not in the model' in proc.stderr  # FishNet-150's units beyond FishNet-99's
    assert not (tmp_path / 'x.onnx').exists()


def test_torch_export_with_dynamic_sides():
    """Catches: FishNet input checks that torch.export (non-strict, its default) cannot prove from sides
    declared as ``32 * Dim`` (e.g. checks that refuse every symbolic size: torch.onnx.export hides that by
    retrying in strict mode), and an exported program that computes other values or accepts sides that
    are not multiples of 32."""
    from torch.export import Dim
    from mmfishnet.models import FishNet
    model = FishNet(arch='99', out_indices=(7, 10)).eval()
    dynamic = {'x': {0: Dim('batch', max=64), 2: 32 * Dim('h', max=64), 3: 32 * Dim('w', max=64)}}
    program = torch.export.export(model, (torch.rand(2, 3, 64, 96), ), dynamic_shapes=dynamic)
    x = torch.rand(3, 3, 96, 64)  # sides of 32 would be 1 at stride 32: torch.export specialises 0/1 sizes
    with torch.no_grad():
        for got, expected in zip(program.module()(x), model(x)):
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(Exception, match='32'):
        program.module()(torch.rand(1, 3, 70, 64))
