# Copyright (c) mmfishnet contributors. All rights reserved.
"""FishNet (Sun et al., NeurIPS 2018) as an OpenMMLab backbone.

The network is a fish: a *tail* that down-samples like a ResNet, a *bridge* at the lowest resolution, a
*body* that up-samples and concatenates the tail's features (up refinement), and a *head* that
down-samples again and concatenates the body's features (down refinement). The channel plan, the block
counts and the wiring follow the authors' released code, so that their ImageNet checkpoints convert
one-to-one (see ``tools/model_converters/fishnet_to_mmfishnet.py``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmfishnet.utils import ConfigType, OptConfigType
from .fish_blocks import NearestUpsample, make_units


class FishTail(nn.Module):
    """A tail stage: residual units, then 2x2 max-pool down-sampling."""

    def __init__(self, in_channels: int, out_channels: int, num_units: int, **unit_kwargs):
        super().__init__()
        self.units = make_units(in_channels, out_channels, num_units, **unit_kwargs)
        self.down = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.units(x))


class FishBridge(nn.Module):
    """The bridge between tail and body, at the lowest resolution.

    ``s = expand(reduce(x))`` (BN-ReLU-conv1x1 to half, BN-ReLU, then conv1x1 with bias to 2x the trunk
    width); an SE-like attention ``a = sigmoid(conv(relu(conv(avgpool(relu(bn(s)))))))``; and
    ``out = trunk(s) * a + a``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_units: int, conv_cfg: OptConfigType,
                 norm_cfg: ConfigType, **unit_kwargs):
        super().__init__()
        mid_channels = in_channels // 2
        wide_channels = out_channels * 2
        squeeze_channels = out_channels // 16
        self.reduce = nn.Sequential(
            build_norm_layer(norm_cfg, in_channels)[1],
            nn.ReLU(inplace=True),
            build_conv_layer(conv_cfg, in_channels, mid_channels, 1, bias=False),
            build_norm_layer(norm_cfg, mid_channels)[1],
            nn.ReLU(inplace=True))
        self.expand = build_conv_layer(conv_cfg, mid_channels, wide_channels, 1, bias=True)
        self.trunk = make_units(
            wide_channels, out_channels, num_units, conv_cfg=conv_cfg, norm_cfg=norm_cfg, **unit_kwargs)
        self.attention = nn.Sequential(
            build_norm_layer(norm_cfg, wide_channels)[1],
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            build_conv_layer(conv_cfg, wide_channels, squeeze_channels, 1, bias=True),
            nn.ReLU(inplace=True),
            build_conv_layer(conv_cfg, squeeze_channels, out_channels, 1, bias=True),
            nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.expand(self.reduce(x))
        a = self.attention(s)
        return self.trunk(s) * a + a


class FishRefine(nn.Module):
    """A body (up refinement) or head (down refinement) stage.

    ``out = concat([sample(trunk(x)), transfer(branch)])``: the trunk's units are followed by nearest x2
    up-sampling (body) or 2x2 max-pool (head); the transfer units carry an earlier stage's feature
    ``branch`` across at the new resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, transfer_channels: int, num_units: int,
                 num_transfer_units: int, sampling: str, dilation: int = 1, reduction: Optional[int] = None,
                 **unit_kwargs):
        super().__init__()
        assert sampling in ('up', 'down')
        self.trunk = make_units(
            in_channels, out_channels, num_units, dilation=dilation, reduction=reduction, **unit_kwargs)
        self.transfer = make_units(transfer_channels, transfer_channels, num_transfer_units, **unit_kwargs)
        self.sample = NearestUpsample(2) if sampling == 'up' else nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.sample(self.trunk(x)), self.transfer(branch)], dim=1)


@MODELS.register_module()
class FishNet(BaseModule):
    """FishNet backbone.

    A reimplementation of `FishNet: A Versatile Backbone for Image, Region, and Pixel Level Prediction
    <https://arxiv.org/abs/1901.03495>`_ that matches the authors' released code parameter for parameter.

    Its selectable outputs, by index (channels @ stride for the default ``stem_stride=4``):

    ====  ======  ==========  ====  ======  ==========
    idx   stage   C @ stride  idx   stage   C @ stride
    ====  ======  ==========  ====  ======  ==========
    0     stem    64 @ 4      6     body2   512 @ 8
    1     tail1   128 @ 8     7     body3   320 @ 4
    2     tail2   256 @ 16    8     head1   832 @ 8
    3     tail3   512 @ 32    9     head2   1600 @ 16
    4     bridge  512 @ 32    10    head3   2112 @ 32
    5     body1   768 @ 16    11    score   1056 @ 32
    ====  ======  ==========  ====  ======  ==========

    ``score`` is the classifier's BN-ReLU-conv1x1-BN-ReLU feature (global average pooling and a linear
    layer on it give the authors' classifier). Only the stages up to the highest requested output are
    built, so the detection backbone (``out_indices=(7, 8, 9, 10)``) carries no classifier weights.
    :attr:`feature_info` lists channels (``num_chs``) and stride (``reduction``) of every requested
    output, in timm's schema.

    Args:
        arch (str | dict): ``'99'``, ``'150'`` or ``'201'``, or a dict with ``res_blocks`` (10 positive
            ints: residual units of tail1-3, bridge, body1-3, head1-3) and ``transfer_blocks`` (6 positive
            ints: transfer units of body1-3, head1-3). Default: ``'99'``.
        in_channels (int): Number of input image channels. Default: 3.
        stem_stride (int): 4 for the ImageNet stem (3x3 convs, the first with stride 2, then a
            stride-2 max-pool); 1 keeps full resolution in the stem (small inputs such as CIFAR's 32x32).
            Inputs must be a multiple of ``8 * stem_stride`` on each side. Default: 4.
        out_indices (Sequence[int]): Outputs to return, indices into the table above; negative
            indices count from the end (-1 is ``score``). Default: ``(7, 8, 9, 10)``.
        frozen_stages (int): Stages ``0 .. frozen_stages`` (by the indices above: 0 is the stem, 1 the
            stem and tail1, ...) are frozen: eval mode and no gradients. -1 freezes nothing. Default: -1.
        conv_cfg (dict, optional): Config of the convolution layers. Default: None (nn.Conv2d).
        norm_cfg (dict): Config of the normalization layers (BN, SyncBN, GN, ...).
            Default: ``dict(type='BN', requires_grad=True)``.
        norm_eval (bool): Keep the normalization layers in eval mode (frozen statistics) during
            training; affects only BatchNorm variants. Default: False.
        with_cp (bool): Gradient checkpointing of every residual unit: less memory, more time.
            Default: False.
        bare_first_shortcut (bool): The projection shortcut of tail1's first unit (64 -> 128 channels) is
            a bare conv1x1 of the stem's output instead of norm -> ReLU -> conv1x1. The authors' released
            model definition has the latter; their only released FishNet-201 weights
            (``fishnet201_ckpt_welltrain.tar``, stored key ``fish.fish.0.0.0.shortcut.weight``) were trained
            with the former, so the configs that start from them set True and the converter records it in
            the checkpoint's ``meta['backbone_args']``. In eval mode the two agree for an identity norm;
            in training mode (batch statistics, a trainable norm) only the bare conv is the function the
            weights were trained as. Default: False.
        channels_last (bool, optional): Compute in the channels-last memory format: the input is
            converted once, every layer keeps that format, and the outputs are returned contiguous
            (NCHW) as usual, so the values are those of the default format up to float rounding. On CPU
            it saves 8-16 % of a FishNet training step (pooling and normalization over the wide
            concatenated features are much faster channels-last; see ``docs/benchmarks.md``). None
            (default) turns it on when the conv and norm layers are PyTorch's own (``Conv2d``;
            ``BN``/``SyncBN``/``GN``/``IN``) and off otherwise, since ops such as mmcv's DCN may assume
            contiguous inputs.
        init_cfg (dict or list[dict], optional): Initialization config, e.g. ``dict(type='Pretrained',
            checkpoint=..., prefix='backbone.')``. Default: None, the authors' initialization (conv
            weights ~ N(0, 2 / (k * k * C_out)), norm weights 1 and biases 0).

    Example:
        >>> import torch
        >>> from mmfishnet.models import FishNet
        >>> model = FishNet(arch='99', out_indices=(7, 8, 9, 10)).eval()
        >>> outs = model(torch.rand(1, 3, 224, 224))
        >>> for out in outs:
        ...     print(tuple(out.shape))
        (1, 320, 56, 56)
        (1, 832, 28, 28)
        (1, 1600, 14, 14)
        (1, 2112, 7, 7)
    """

    # Residual units of tail1-3, bridge, body1-3, head1-3 and transfer units of body1-3, head1-3.
    arch_settings = {
        '99': dict(res_blocks=(2, 2, 6, 2, 1, 1, 1, 1, 2, 2), transfer_blocks=(1, 1, 1, 1, 1, 4)),
        '150': dict(res_blocks=(2, 4, 8, 4, 2, 2, 2, 2, 2, 4), transfer_blocks=(2, 2, 2, 2, 2, 4)),
        '201': dict(res_blocks=(3, 4, 12, 4, 2, 2, 2, 2, 3, 10), transfer_blocks=(2, 2, 2, 2, 2, 9)),
    }
    # The channel plan shared by every variant: stem width, then the trunk width of each stage.
    stem_channels = 64
    trunk_channels = dict(tail1=128, tail2=256, tail3=512, bridge=512, body1=512, body2=384, body3=256,
                          head1=320, head2=832, head3=1600)
    stage_names = ('stem', 'tail1', 'tail2', 'tail3', 'bridge', 'body1', 'body2', 'body3', 'head1',
                   'head2', 'head3', 'score')
    # Where each refinement stage's transfer branch comes from.
    transfer_sources = dict(body1='tail2', body2='tail1', body3='stem', head1='body2', head2='body1',
                            head3='bridge')
    body_dilations = dict(body1=1, body2=2, body3=4)
    stem_strides = (1, 4)
    # Layer types known to compute correctly on channels-last inputs (PyTorch's own modules).
    channels_last_conv_types = ('Conv', 'Conv2d')
    channels_last_norm_types = ('BN', 'BN2d', 'SyncBN', 'GN', 'IN', 'IN2d')

    def __init__(self,
                 arch: Union[str, int, dict] = '99',
                 in_channels: int = 3,
                 stem_stride: int = 4,
                 out_indices: Sequence[int] = (7, 8, 9, 10),
                 frozen_stages: int = -1,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 bare_first_shortcut: bool = False,
                 channels_last: Optional[bool] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        self.arch = self._parse_arch(arch)
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
        if stem_stride not in self.stem_strides:
            raise ValueError(f'stem_stride must be one of {self.stem_strides} (4: ImageNet stem, 1: full '
                             f'resolution for small inputs), got {stem_stride!r}')
        self.out_indices = self._parse_out_indices(out_indices)
        num_built = max(self.out_indices) + 1
        if (not isinstance(frozen_stages, int) or isinstance(frozen_stages, bool)
                or not -1 <= frozen_stages < num_built):
            raise ValueError(f'frozen_stages must be an int in [-1, {num_built - 1}] (-1 freezes nothing; '
                             f'stages up to out index {num_built - 1} are built for out_indices='
                             f'{tuple(out_indices)}), got {frozen_stages!r}')
        if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
            raise ValueError(f"norm_cfg must be a dict with a 'type', e.g. dict(type='BN'), got {norm_cfg!r}")
        if isinstance(norm_cfg['type'], str) and MODELS.get(norm_cfg['type']) is None:
            raise ValueError(f"norm_cfg type {norm_cfg['type']!r} is not a registered normalization layer; "
                             "use e.g. 'BN', 'SyncBN' or 'GN' (with num_groups)")
        if conv_cfg is not None and not isinstance(conv_cfg, dict):
            raise ValueError(f'conv_cfg must be None or a dict, got {conv_cfg!r}')
        if not isinstance(bare_first_shortcut, bool):
            raise ValueError(f'bare_first_shortcut must be True or False, got {bare_first_shortcut!r}')
        if channels_last is not None and not isinstance(channels_last, bool):
            raise ValueError(f'channels_last must be True, False or None (automatic), got {channels_last!r}')
        self.in_channels = in_channels
        self.stem_stride = stem_stride
        self.frozen_stages = frozen_stages
        self.norm_eval = bool(norm_eval)
        self.with_cp = bool(with_cp)
        self.bare_first_shortcut = bare_first_shortcut
        self.channels_last = (self._native_layers(conv_cfg, norm_cfg)
                              if channels_last is None else channels_last)
        self.size_divisor = 8 * stem_stride

        unit_kwargs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, with_cp=self.with_cp)
        self.built_stages = self.stage_names[:num_built]
        # Channels and stride of every stage's output, filled in as the network is built.
        channels: Dict[str, int] = {}
        strides: Dict[str, int] = {}

        self.stem = self._make_stem(in_channels, stem_stride, conv_cfg, norm_cfg)
        channels['stem'], strides['stem'] = self.stem_channels, stem_stride
        res_blocks = dict(zip(self.stage_names[1:11], self.arch['res_blocks']))
        transfer_blocks = dict(zip(self.stage_names[5:11], self.arch['transfer_blocks']))
        previous = 'stem'
        for name in self.built_stages[1:]:
            in_ch, width = channels[previous], self.trunk_channels.get(name)
            if name.startswith('tail'):
                stage = FishTail(in_ch, width, res_blocks[name],
                                 bare_shortcut=bare_first_shortcut and name == 'tail1', **unit_kwargs)
                channels[name], strides[name] = width, strides[previous] * 2
            elif name == 'bridge':
                stage = FishBridge(in_ch, width, res_blocks[name], with_cp=self.with_cp, conv_cfg=conv_cfg,
                                   norm_cfg=norm_cfg)
                channels[name], strides[name] = width, strides[previous]
            elif name == 'score':
                stage = self._make_score(in_ch, conv_cfg, norm_cfg)
                channels[name], strides[name] = in_ch // 2, strides[previous]
            else:  # body (up refinement) or head (down refinement)
                source = self.transfer_sources[name]
                is_body = name.startswith('body')
                stage = FishRefine(
                    in_ch, width, channels[source], res_blocks[name], transfer_blocks[name],
                    sampling='up' if is_body else 'down',
                    dilation=self.body_dilations.get(name, 1),
                    reduction=in_ch // width if is_body else None,
                    **unit_kwargs)
                channels[name] = width + channels[source]
                strides[name] = strides[previous] // 2 if is_body else strides[previous] * 2
                assert strides[name] == strides[source], f'{name} and {source} differ in stride'
            self.add_module(name, stage)
            previous = name
        self.stage_channels, self.stage_strides = channels, strides

        self._init_authors_weights()
        self._freeze_stages()

    # ------------------------------------------------------------------ construction helpers
    def _parse_arch(self, arch: Union[str, int, dict]) -> Dict[str, Tuple[int, ...]]:
        if isinstance(arch, int) and not isinstance(arch, bool):
            arch = str(arch)
        if isinstance(arch, str):
            key = arch.lower().replace('fishnet', '').replace('-', '')
            if key not in self.arch_settings:
                raise ValueError(f'unknown FishNet arch {arch!r}: use one of '
                                 f'{sorted(self.arch_settings, key=int)} or a dict with res_blocks '
                                 f'(10 ints) and transfer_blocks (6 ints)')
            return dict(self.arch_settings[key])
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str such as "150" or a dict, got {type(arch).__name__}')
        expected = dict(res_blocks=10, transfer_blocks=6)
        unknown = set(arch) - set(expected)
        if unknown or set(expected) - set(arch):
            raise ValueError(f'an arch dict needs exactly the keys res_blocks (10 ints: tail1-3, bridge, '
                             f'body1-3, head1-3) and transfer_blocks (6 ints: body1-3, head1-3); got keys '
                             f'{sorted(arch)}')
        parsed = {}
        for key, length in expected.items():
            value = arch[key]
            if (not isinstance(value, (list, tuple)) or len(value) != length
                    or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
                raise ValueError(f'arch[{key!r}] must be {length} positive ints, got {value!r}')
            parsed[key] = tuple(value)
        return parsed

    def _parse_out_indices(self, out_indices: Sequence[int]) -> Tuple[int, ...]:
        num = len(self.stage_names)
        if isinstance(out_indices, int) and not isinstance(out_indices, bool):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)) or not out_indices:
            raise ValueError(f'out_indices must be a non-empty sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or isinstance(index, bool) or not -num <= index < num:
                raise ValueError(f'out_indices entries must be ints in [{-num}, {num - 1}] '
                                 f'({", ".join(f"{i}: {n}" for i, n in enumerate(self.stage_names))}), '
                                 f'got {index!r}')
            parsed.append(index % num)
        if len(set(parsed)) != len(parsed):
            raise ValueError(f'out_indices has repeated stages: {tuple(out_indices)}')
        return tuple(parsed)

    def _native_layers(self, conv_cfg: OptConfigType, norm_cfg: ConfigType) -> bool:
        """Whether the conv and norm layers are PyTorch's own, which accept any memory format."""
        conv_type = 'Conv2d' if conv_cfg is None else conv_cfg.get('type', 'Conv2d')
        return conv_type in self.channels_last_conv_types and norm_cfg['type'] in self.channels_last_norm_types

    def _make_stem(self, in_channels: int, stem_stride: int, conv_cfg: OptConfigType,
                   norm_cfg: ConfigType) -> nn.Sequential:
        half = self.stem_channels // 2
        first_stride = 2 if stem_stride == 4 else 1
        layers = [
            ConvModule(in_channels, half, 3, stride=first_stride, padding=1, bias=False, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg),
            ConvModule(half, half, 3, padding=1, bias=False, conv_cfg=conv_cfg, norm_cfg=norm_cfg),
            ConvModule(half, self.stem_channels, 3, padding=1, bias=False, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg),
        ]
        if stem_stride == 4:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        return nn.Sequential(*layers)

    @staticmethod
    def _make_score(in_channels: int, conv_cfg: OptConfigType, norm_cfg: ConfigType) -> nn.Sequential:
        """The classifier's score feature: BN-ReLU-conv1x1 (to half the channels)-BN-ReLU."""
        return nn.Sequential(
            build_norm_layer(norm_cfg, in_channels)[1],
            nn.ReLU(inplace=True),
            build_conv_layer(conv_cfg, in_channels, in_channels // 2, 1, bias=False),
            build_norm_layer(norm_cfg, in_channels // 2)[1],
            nn.ReLU(inplace=True))

    def _init_authors_weights(self) -> None:
        """The authors' initialization: conv weights ~ N(0, 2 / (k_h * k_w * C_out)), norm 1 / 0; other
        parameters (conv biases) keep PyTorch's defaults, as in the released code."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2. / fan_out))
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """A ``Pretrained`` init_cfg (a local file, a URL or another of mmengine's checkpoint prefixes) is
        loaded strictly for the built stages (see :func:`mmfishnet.utils.checkpoint.load_pretrained_backbone`):
        a wrong file fails here, instead of training silently from random weights. Other init_cfgs go
        through mmengine as usual."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmengine.logging import print_log
            from mmfishnet.utils.checkpoint import load_pretrained_backbone
            result = load_pretrained_backbone(
                self, cfg['checkpoint'], prefix=cfg.get('prefix', ''), map_location=cfg.get('map_location', 'cpu'))
            print_log(f"FishNet: loaded {result['loaded']} tensors from {cfg['checkpoint']} "
                      f"({result['ignored']} of stages not built here ignored)", logger='current')
            self._is_init = True
            return
        super().init_weights()

    # ------------------------------------------------------------------ the OpenMMLab contract
    @property
    def feature_info(self) -> List[dict]:
        """Each output, in the order of ``out_indices``, described as timm's feature extractors describe
        theirs (``timm.models.FeatureInfo``): ``num_chs`` (channels), ``reduction`` (stride to the input)
        and ``module`` (the stage's attribute name), plus its ``index`` in the table above."""
        names = [self.stage_names[i] for i in self.out_indices]
        return [dict(num_chs=self.stage_channels[name], reduction=self.stage_strides[name], module=name, index=i)
                for i, name in zip(self.out_indices, names)]

    @property
    def out_channels(self) -> Tuple[int, ...]:
        return tuple(info['num_chs'] for info in self.feature_info)

    def _freeze_stages(self) -> None:
        for name in self.stage_names[:self.frozen_stages + 1]:
            stage = getattr(self, name)
            stage.eval()
            for param in stage.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'FishNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def _check_input(self, x: torch.Tensor) -> None:
        """Refuse inputs the network cannot compute, with a message that names the fix.

        In eager mode (and under the TorchScript tracer) the sizes are ints and a wrong one raises
        ``ValueError``; under ``torch.compile`` the same comparisons become guards. While ``torch.export``
        traces with dynamic sizes they are ``SymInt`` s, and the conditions are stated with
        ``torch._check``: export records them and proves them from the declared ``dynamic_shapes``, so sides
        declared as multiples of the size divisor (``32 * torch.export.Dim('h')``) export, with the runtime
        error message kept. (Plain ``Dim('h')`` sides cannot export whatever the checks: the body's
        concatenations of up-sampled and earlier features need ``h % 32 == 0`` too.)
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f'FishNet expects a 4-D (N, C, H, W) tensor, got {shape}')
        channels, (h, w) = x.shape[1], x.shape[-2:]
        # The messages are formatted only when raised: formatting a size under torch.compile fixes the graph to
        # that size (a recompilation for every new image size, then eager once torch's recompile limit is hit).

        def channels_message() -> str:
            return (f'FishNet was built with in_channels={self.in_channels} but got an input with {channels} '
                    f'channels; set in_channels={channels} or fix the input')

        def sides_message() -> str:
            return (f'FishNet needs input height and width divisible by {self.size_divisor} (its body '
                    f'concatenates up-sampled and earlier features), got {h}x{w}; pad the input, e.g. '
                    f'DetDataPreprocessor(pad_size_divisor={self.size_divisor}) in mmdet or a crop/resize '
                    f'to a multiple of {self.size_divisor}; for torch.export declare dynamic sides as '
                    f"{self.size_divisor} * Dim('h')")

        if torch.compiler.is_exporting() and any(isinstance(s, torch.SymInt) for s in (channels, h, w)):
            torch._check(channels == self.in_channels, channels_message)
            torch._check(h % self.size_divisor == 0, sides_message)
            torch._check(w % self.size_divisor == 0, sides_message)
            return
        if channels != self.in_channels:
            raise ValueError(channels_message())
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(sides_message())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        self._check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out_names = [self.stage_names[i] for i in self.out_indices]
        # Keep a stage's output only while a later stage (its transfer branch) or the caller needs it.
        feats = {}
        for name in self.built_stages:
            stage = getattr(self, name)
            if name in self.transfer_sources:
                source = self.transfer_sources[name]
                branch = feats[source] if source in out_names else feats.pop(source)
                x = stage(x, branch)
            else:
                x = stage(x)
            if name in out_names or name in self.transfer_sources.values():
                feats[name] = x
        outs = tuple(feats[name] for name in out_names)
        if self.channels_last:
            outs = tuple(out.contiguous() for out in outs)
        return outs
