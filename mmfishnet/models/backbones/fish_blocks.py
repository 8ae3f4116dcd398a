# Copyright (c) mmfishnet contributors. All rights reserved.
"""Building blocks of FishNet: the pre-activation bottleneck and the channel reduction r(x)."""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmfishnet.utils import ConfigType, OptConfigType


@contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Within the block, the training-mode BatchNorm layers of ``module`` normalise with the batch's
    statistics as usual but leave their running statistics and ``num_batches_tracked`` as they were
    (a momentum of 0 keeps the computation, and so the tensors autograd saves, the same)."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is laid out channels-last (and not also contiguous, as tensors with one channel or
    1x1 sides are in both formats)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class ChannelReduction(nn.Module):
    """Channel-wise reduction r(x) of the paper (Eq. 5): output channel ``n`` is the sum of the ``k``
    adjacent input channels ``k*n .. k*n + k - 1``. It has no parameters.

    The sum is asked for in the input's dtype (``dtype=x.dtype``): without it, CUDA autocast runs ``sum``
    in float32 (it is on autocast's fp32 list, ``AT_FORALL_FP32_SET_OPT_DTYPE`` in ATen's
    ``autocast_mode.h``; CPU autocast leaves it alone), so on a GPU the shortcut came out float32 and the
    in-place residual add mixed dtypes. The values are the same: reductions accumulate in float32 for
    half-precision inputs either way.

    Args:
        k (int): How many adjacent channels are summed into one. ``k=1`` is the identity.
    """

    def __init__(self, k: int):
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f'ChannelReduction needs a positive integer k, got {k!r}')
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return x
        n, c, h, w = x.shape
        if c % self.k:
            raise ValueError(f'ChannelReduction(k={self.k}) got {c} channels, which {self.k} does not divide')
        if is_channels_last(x):
            # channels-last: the k channels are adjacent in memory; the sum stays channels-last
            nhwc = x.permute(0, 2, 3, 1).unflatten(3, (c // self.k, self.k))
            return nhwc.sum(dim=4, dtype=x.dtype).permute(0, 3, 1, 2)
        return x.unflatten(1, (c // self.k, self.k)).sum(dim=2, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f'k={self.k}'


class NearestUpsample(nn.Module):
    """Nearest-neighbour up-sampling by an integer ``scale``: every pixel repeated ``scale x scale`` times,
    the values of ``nn.Upsample(scale_factor=scale, mode='nearest')``. It has no parameters.

    Written as an expanded view copied once (in the input's memory format) rather than
    ``F.interpolate``: CUDA autocast runs ``upsample_nearest2d`` in float32 (``AT_FORALL_FP32`` in ATen's
    ``autocast_mode.h``), so on a GPU the body's up-sampled trunk came out float32 and every concatenation,
    normalization and residual add after it ran in float32 too. A copy keeps the input's dtype.

    Args:
        scale (int): The up-sampling factor of both sides. Default: 2.
    """

    def __init__(self, scale: int = 2):
        super().__init__()
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f'NearestUpsample needs a positive integer scale, got {scale!r}')
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.scale
        if is_channels_last(x):  # repeat in NHWC order, so that the copy is channels-last too
            nhwc = x.permute(0, 2, 3, 1)[:, :, None, :, None, :].expand(n, h, s, w, s, c)
            return nhwc.reshape(n, h * s, w * s, c).permute(0, 3, 1, 2)
        return x[:, :, :, None, :, None].expand(n, c, h, s, w, s).reshape(n, c, h * s, w * s)

    def extra_repr(self) -> str:
        return f'scale={self.scale}'


class PreActBottleneck(BaseModule):
    """Pre-activation bottleneck residual unit used everywhere in FishNet.

    ``out = conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))) + shortcut(x)`` with
    ``conv1`` 1x1 to ``out_channels // 4``, ``conv2`` 3x3 (dilated), ``conv3`` 1x1 to ``out_channels``,
    all without bias.

    The shortcut is, in this order of precedence:

    - the channel reduction r(x) with factor ``reduction`` (the first unit of a body stage, the
      up-sampling refinement), which needs ``in_channels == reduction * out_channels``;
    - the identity when ``in_channels == out_channels``;
    - a pre-activated projection ``norm -> ReLU -> conv1x1`` otherwise, or a bare ``conv1x1`` with
      ``bare_shortcut``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels; a multiple of 4 (the bottleneck is a quarter of it).
        dilation (int): Dilation (and padding) of the 3x3 convolution. Default: 1.
        reduction (int, optional): Use the channel reduction r(x) with this factor as the shortcut.
            Default: None.
        bare_shortcut (bool): Make the projection shortcut a bare conv1x1 of the input, without the norm
            and ReLU in front of it (the first unit of the authors' FishNet-201 weights, see
            :class:`FishNet`'s ``bare_first_shortcut``). Only for a projection: ``in_channels !=
            out_channels`` and no ``reduction``. Default: False.
        conv_cfg (dict, optional): Config of the convolution layers. Default: None (nn.Conv2d).
        norm_cfg (dict): Config of the normalization layers. Default: ``dict(type='BN')``.
        with_cp (bool): Trade compute for memory with gradient checkpointing of this unit: its
            activations are recomputed during backward (BatchNorm running statistics are updated once,
            as without checkpointing). Default: False.
        init_cfg (dict or list[dict], optional): Initialization config. Default: None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 dilation: int = 1,
                 reduction: Optional[int] = None,
                 bare_shortcut: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'),
                 with_cp: bool = False,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg=init_cfg)
        if out_channels % 4:
            raise ValueError(f'PreActBottleneck needs out_channels divisible by 4, got {out_channels}')
        if reduction is not None and in_channels != reduction * out_channels:
            raise ValueError(f'the channel reduction r(x) with k={reduction} maps {in_channels} channels to '
                             f'{in_channels // reduction}, not {out_channels}')
        if bare_shortcut and (reduction is not None or in_channels == out_channels):
            raise ValueError(f'bare_shortcut needs a projection shortcut (in_channels != out_channels, no '
                             f'reduction), got {in_channels} -> {out_channels} channels, reduction={reduction}')
        mid_channels = out_channels // 4
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.with_cp = with_cp

        self.norm1_name, norm1 = build_norm_layer(norm_cfg, in_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.conv1 = build_conv_layer(conv_cfg, in_channels, mid_channels, 1, bias=False)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, mid_channels, postfix=2)
        self.add_module(self.norm2_name, norm2)
        self.conv2 = build_conv_layer(
            conv_cfg, mid_channels, mid_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, mid_channels, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.conv3 = build_conv_layer(conv_cfg, mid_channels, out_channels, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

        if reduction is not None:
            self.shortcut = ChannelReduction(reduction)
        elif in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif bare_shortcut:
            self.shortcut = build_conv_layer(conv_cfg, in_channels, out_channels, 1, bias=False)
        else:
            self.shortcut = nn.Sequential(
                build_norm_layer(norm_cfg, in_channels)[1],
                nn.ReLU(inplace=True),
                build_conv_layer(conv_cfg, in_channels, out_channels, 1, bias=False))

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu(self.norm1(x)))
        out = self.conv2(self.relu(self.norm2(out)))
        out = self.conv3(self.relu(self.norm3(out)))
        # In place: conv3's output is not kept for its backward, and a fresh buffer for the sum would cost
        # an allocation (page faults on CPU) per unit.
        out += self.shortcut(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.with_cp and x.requires_grad):
            return self._forward(x)
        calls = []

        def run(inputs: torch.Tensor) -> torch.Tensor:
            if calls:  # the recomputation during backward: same values, no second update of BN statistics
                with frozen_running_stats(self):
                    return self._forward(inputs)
            calls.append(1)
            return self._forward(inputs)

        return cp.checkpoint(run, x, use_reentrant=False)


def make_units(in_channels: int,
               out_channels: int,
               num_units: int,
               dilation: int = 1,
               reduction: Optional[int] = None,
               bare_shortcut: bool = False,
               **kwargs) -> nn.Sequential:
    """A run of ``num_units`` :class:`PreActBottleneck` units. The first maps ``in_channels`` to
    ``out_channels`` (with the channel reduction as its shortcut when ``reduction`` is given, a bare conv
    with ``bare_shortcut``); the rest keep ``out_channels``. All use ``dilation``; ``kwargs`` go to every
    unit."""
    units = [PreActBottleneck(in_channels, out_channels, dilation=dilation, reduction=reduction,
                              bare_shortcut=bare_shortcut, **kwargs)]
    units += [PreActBottleneck(out_channels, out_channels, dilation=dilation, **kwargs)
              for _ in range(num_units - 1)]
    return nn.Sequential(*units)
