"""FishNet keeps the autocast dtype on a GPU: none of its ops is one that CUDA autocast runs in float32.

A CPU cannot run CUDA autocast, so the tests guard the cause instead: they log every ATen op FishNet's
forward calls (a ``TorchDispatchMode``, which sees the ops after the composite ones are decomposed, as
autocast's inner calls are dispatched) and compare them with CUDA autocast's float32 lists, read from the
installed torch's own header ``torch/include/ATen/autocast_mode.h`` (``AT_FORALL_FP32``: always float32;
``AT_FORALL_FP32_SET_OPT_DTYPE``: float32 unless the call names a ``dtype``), the lists its
``autocast_mode.cpp`` registers for ``AutocastCUDA``. The GPU run (tools/gpu_check.sh) confirms the dtypes.
"""
import os
import re

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mmfishnet.models import FishNet
from mmfishnet.models.backbones.fish_blocks import ChannelReduction, NearestUpsample

HEADER = os.path.join(os.path.dirname(torch.__file__), 'include', 'ATen', 'autocast_mode.h')


def _macro_entries(text: str, macro: str) -> set:
    """(op, overload) pairs of an ``AT_FORALL_*(_)`` list macro: ``_(op)`` or ``_(op, overload)``."""
    body = []
    for line in text[text.index(f'#define {macro}(_)'):].splitlines():
        body.append(line)
        if not line.rstrip().endswith('\\'):  # the macro's last line
            break
    pairs = re.findall(r'_\((\w+)(?:,\s*(\w+))?\)', '\n'.join(body))
    return {(op, overload or 'default') for op, overload in pairs}


def cuda_autocast_fp32_ops():
    """CUDA autocast's float32 ops: (always, unless_dtype_given), each a set of (op, overload)."""
    if not os.path.isfile(HEADER):
        pytest.skip(f'this torch ships no ATen headers ({HEADER})')
    text = open(HEADER).read()
    return _macro_entries(text, 'AT_FORALL_FP32'), _macro_entries(text, 'AT_FORALL_FP32_SET_OPT_DTYPE')


class OpLog(TorchDispatchMode):
    """Every ATen op called inside the block: (op, overload, kwargs)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls.append((func._schema.name.split('::')[-1], func._overloadname, dict(kwargs or {})))
        return func(*args, **(kwargs or {}))


def fp32_ops_called(fn) -> list:
    always, unless_dtype = cuda_autocast_fp32_ops()
    log = OpLog()
    with log:
        fn()
    return sorted({f'{op}.{overload}' for op, overload, kwargs in log.calls
                   if (op, overload) in always or ((op, overload) in unless_dtype and kwargs.get('dtype') is None)})


def test_the_lists_are_cuda_autocasts():
    """Catches reading the wrong lists (a renamed macro, a parser that finds nothing): the header's float32
    entries must be what the installed torch registers for the AutocastCUDA dispatch key, and they must hold
    the two ops FishNet had used (``sum.dim_IntList`` and ``upsample_nearest2d``)."""
    always, unless_dtype = cuda_autocast_fp32_ops()
    assert ('upsample_nearest2d', 'default') in always and ('sum', 'dim_IntList') in unless_dtype
    if not torch.backends.cuda.is_built():
        pytest.skip('this torch is built without CUDA: no AutocastCUDA kernels to compare with')
    for op, overload in always | unless_dtype:
        name = f'aten::{op}' + ('' if overload == 'default' else f'.{overload}')
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, 'AutocastCUDA'), name
    assert not torch._C._dispatch_has_kernel_for_dispatch_key('aten::max_pool2d', 'AutocastCUDA')


@pytest.mark.parametrize('channels_last', [True, False], ids=['channels_last', 'nchw'])
@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
def test_fishnet_uses_no_op_that_cuda_autocast_runs_in_fp32(training, channels_last):
    """Catches a FishNet op that CUDA autocast runs in float32: the channel reduction r(x) written as
    ``x.sum(dim)`` (float32 shortcut, then a mixed-dtype residual add) and the body's up-sampling written as
    ``F.interpolate``/``nn.Upsample`` (float32 ``upsample_nearest2d``: the body's and head's concatenations,
    norms and adds then all ran in float32). Every stage is built (all outputs requested), in both memory
    formats (r(x) and the up-sampling have a code path each) and both modes."""
    model = FishNet(arch='99', out_indices=tuple(range(12)), channels_last=channels_last).train(training)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert fp32_ops_called(lambda: model(x)) == []


def test_the_check_sees_fp32_ops():
    """The check above against the two ways FishNet had computed in float32 on a GPU (its own "seen
    failing"): ``sum`` without a dtype and ``F.interpolate``; a ``sum`` that names its dtype passes."""
    x = torch.rand(1, 4, 2, 2)
    assert fp32_ops_called(lambda: x.unflatten(1, (2, 2)).sum(dim=2)) == ['sum.dim_IntList']
    assert fp32_ops_called(lambda: F.interpolate(x, scale_factor=2, mode='nearest')) == ['upsample_nearest2d.default']
    assert fp32_ops_called(lambda: x.unflatten(1, (2, 2)).sum(dim=2, dtype=x.dtype)) == []


@pytest.mark.parametrize('memory_format', [torch.channels_last, torch.contiguous_format], ids=['cl', 'nchw'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16])
def test_nearest_upsample_is_interpolate(memory_format, dtype):
    """Catches a NearestUpsample that differs from ``F.interpolate(scale_factor=2, mode='nearest')``, the
    up-sampling of the authors' FishNet (wrong pixel repeated, height and width swapped, channels mixed in
    the channels-last path), changes the memory format or the dtype, or has another gradient (each input
    pixel's gradient is the sum over its 2x2 copies)."""
    x = torch.randn(2, 3, 4, 5, dtype=dtype).contiguous(memory_format=memory_format).requires_grad_()
    ours = NearestUpsample(2)(x)
    ref = F.interpolate(x, scale_factor=2, mode='nearest')
    assert torch.equal(ours, ref) and ours.dtype == dtype
    assert ours.is_contiguous(memory_format=memory_format)
    grad = torch.randn_like(ref)
    g_ours, = torch.autograd.grad(ours, x, grad)
    g_ref, = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-2 if dtype == torch.bfloat16 else 1e-12, atol=0)


@pytest.mark.parametrize('memory_format', [torch.channels_last, torch.contiguous_format], ids=['cl', 'nchw'])
def test_channel_reduction_keeps_dtype(memory_format):
    """Catches a channel reduction whose output dtype differs from its input's (the sum's ``dtype=`` set to
    a fixed one such as float32) in either memory-format path, or that rounds other than once."""
    x = torch.randn(2, 8, 3, 3, dtype=torch.bfloat16).contiguous(memory_format=memory_format)
    out = ChannelReduction(2)(x)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, x.float().unflatten(1, (4, 2)).sum(2).bfloat16())
