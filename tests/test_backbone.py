import pytest
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmfishnet.models import ChannelReduction, FishNet, PreActBottleneck

DETECTION = (7, 8, 9, 10)
BACKBONE_PARAMS = {'99': 13_335_296, '150': 21_665_792, '201': 41_290_944}
CLASSIFIER_PARAMS = {'99': 16_628_904, '150': 24_959_400, '201': 44_584_552}
# (channels, stride) of every selectable output with the ImageNet stem
EXPECTED = [(64, 4), (128, 8), (256, 16), (512, 32), (512, 32), (768, 16), (512, 8), (320, 4), (832, 8),
            (1600, 16), (2112, 32), (1056, 32)]


def num_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch', ['99', '150', '201'])
def test_parameter_counts(arch):
    assert num_params(FishNet(arch=arch, out_indices=DETECTION)) == BACKBONE_PARAMS[arch]
    score_backbone = FishNet(arch=arch, out_indices=(11, ))
    fc = nn.Linear(score_backbone.out_channels[0], 1000)
    assert num_params(score_backbone) + num_params(fc) == CLASSIFIER_PARAMS[arch]


def test_default_is_detection_backbone():
    model = FishNet()
    assert model.out_indices == DETECTION
    assert model.out_channels == (320, 832, 1600, 2112)
    assert [f['reduction'] for f in model.feature_info] == [4, 8, 16, 32]
    assert not hasattr(model, 'score')


@pytest.mark.parametrize('size', [(224, 224), (320, 416)])
def test_every_output_shape(size):
    model = FishNet(arch='99', out_indices=tuple(range(12))).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 12
    for out, info, (channels, stride) in zip(outs, model.feature_info, EXPECTED):
        assert info['num_chs'] == channels and info['reduction'] == stride, info
        assert tuple(out.shape) == (1, channels, size[0] // stride, size[1] // stride), info['module']


def test_feature_info_names_the_modules_that_compute_the_outputs():
    """Catches a ``feature_info`` that timm-style consumers cannot use: each entry's ``module`` must be
    the attribute whose forward output is the returned feature (timm's feature hooks read it so), with
    ``num_chs`` its channels and ``reduction`` the input size over its size."""
    model = FishNet(arch='99', out_indices=(11, 0, 7, 4)).eval()
    seen = {}
    for info in model.feature_info:
        getattr(model, info['module']).register_forward_hook(
            lambda m, i, out, name=info['module']: seen.__setitem__(name, out.contiguous()))
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert [info['module'] for info in model.feature_info] == ['score', 'stem', 'body3', 'bridge']
    for out, info in zip(outs, model.feature_info):
        assert torch.equal(out, seen[info['module']]), info
        assert out.shape[1] == info['num_chs'] and 64 // out.shape[2] == 96 // out.shape[3] == info['reduction']


def test_in_channels_other_than_three():
    """Catches an ``in_channels`` ignored by the stem (a hard-coded 3): a 4-channel FishNet takes 4-channel
    images, its first conv has 4 input channels and each of them reaches the output."""
    model = FishNet(arch='99', in_channels=4, out_indices=(0, )).eval()
    assert model.stem[0].conv.weight.shape == (32, 4, 3, 3)
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        out = model(x)[0]
        assert tuple(out.shape) == (2, 64, 8, 8)
        for channel in range(4):
            changed = x.clone()
            changed[:, channel] += 1
            assert not torch.equal(model(changed)[0], out), channel
    with pytest.raises(ValueError, match='in_channels=4 but got an input with 3 channels'):
        model(torch.rand(1, 3, 32, 32))


def test_out_indices_order_and_negative():
    model = FishNet(arch='99', out_indices=(-1, 0, 4)).eval()
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [1056, 64, 512]
    assert model.out_indices == (11, 0, 4)


def test_builds_only_what_outputs_need():
    model = FishNet(arch='99', out_indices=(1, ))
    assert model.built_stages == ('stem', 'tail1')
    assert not hasattr(model, 'tail2')
    assert tuple(model(torch.rand(2, 3, 64, 64))[0].shape) == (2, 128, 8, 8)


def test_cifar_stem_keeps_full_resolution():
    model = FishNet(arch='99', stem_stride=1, out_indices=(0, 10, 11)).eval()
    outs = model(torch.rand(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 32, 32), (2, 2112, 4, 4), (2, 1056, 4, 4)]
    with pytest.raises(ValueError, match='divisible by 8'):
        model(torch.rand(1, 3, 36, 36))


def test_channel_reduction_sums_adjacent_channels():
    x = torch.arange(2 * 6 * 2 * 2, dtype=torch.float32).reshape(2, 6, 2, 2)
    out = ChannelReduction(2)(x)
    assert out.shape == (2, 3, 2, 2)
    for n in range(3):
        assert torch.equal(out[:, n], x[:, 2 * n] + x[:, 2 * n + 1])
    assert ChannelReduction(1)(x) is x
    # the channels-last path gives the same sums and keeps the layout
    out_cl = ChannelReduction(2)(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(out_cl, out) and out_cl.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match='does not divide'):
        ChannelReduction(4)(x)


def test_body_units_use_channel_reduction_shortcut():
    model = FishNet(arch='99', out_indices=(7, ))
    assert model.body1.trunk[0].shortcut.k == 1
    assert model.body2.trunk[0].shortcut.k == 2 and model.body3.trunk[0].shortcut.k == 2
    assert model.body2.trunk[0].conv2.dilation == (2, 2)
    assert model.body3.trunk[0].conv2.dilation == (4, 4)
    assert all(unit.conv2.dilation == (1, 1) for unit in model.body3.transfer)
    # the shortcut of a body's first unit has no parameters
    assert num_params(model.body2.trunk[0].shortcut) == 0


def test_bottleneck_shortcuts():
    assert isinstance(PreActBottleneck(64, 64).shortcut, nn.Identity)
    projection = PreActBottleneck(64, 128).shortcut
    assert isinstance(projection, nn.Sequential) and isinstance(projection[2], nn.Conv2d)
    with pytest.raises(ValueError, match='r\\(x\\)'):
        PreActBottleneck(96, 64, reduction=2)
    with pytest.raises(ValueError, match='divisible by 4'):
        PreActBottleneck(64, 66)
    # a bare conv1x1 projection (FishNet-201 welltrain's first unit), only where there is a projection
    assert isinstance(PreActBottleneck(64, 128, bare_shortcut=True).shortcut, nn.Conv2d)
    for kwargs in (dict(in_channels=64, out_channels=64), dict(in_channels=128, out_channels=64, reduction=2)):
        with pytest.raises(ValueError, match='bare_shortcut needs a projection'):
            PreActBottleneck(bare_shortcut=True, **kwargs)
    model = FishNet(arch='99', out_indices=(2, ), bare_first_shortcut=True)
    assert isinstance(model.tail1.units[0].shortcut, nn.Conv2d)  # that unit only
    assert isinstance(model.tail2.units[0].shortcut, nn.Sequential)


def _frozen(module):
    return all(not p.requires_grad for p in module.parameters())


def test_frozen_stages():
    model = FishNet(arch='99', frozen_stages=2)
    model.train()
    for name in ('stem', 'tail1', 'tail2'):
        stage = getattr(model, name)
        assert _frozen(stage), name
        assert all(not m.training for m in stage.modules()), name
    for name in ('tail3', 'bridge', 'body1', 'head3'):
        assert all(p.requires_grad for p in getattr(model, name).parameters()), name
        assert getattr(model, name).training
    # a training step does not change a frozen stage
    before = {k: v.clone() for k, v in model.tail1.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    sum(o.mean() for o in model(torch.rand(2, 3, 64, 64))).backward()
    opt.step()
    for k, v in model.tail1.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_norm_eval():
    model = FishNet(arch='99', norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    stats = model.head3.trunk[0].norm1.running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    assert torch.equal(stats, model.head3.trunk[0].norm1.running_mean)
    model = FishNet(arch='99', norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def _outputs_and_gradients(model, x):
    outs = model(x)
    sum((o * torch.linspace(0, 1, o.numel(), dtype=o.dtype).view_as(o)).sum() for o in outs).backward()
    return outs, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_with_cp_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = FishNet(arch='99', out_indices=(7, 8, 9, 10, 11))
    ckpt = FishNet(arch='99', out_indices=(7, 8, 9, 10, 11), with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 96)
    outs, grads = zip(*(_outputs_and_gradients(model.train(), x) for model in (plain, ckpt)))
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-4, rtol=1e-3), name
    # the recomputation in backward does not update the BN statistics a second time
    for (name, a), b in zip(plain.state_dict().items(), ckpt.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name


@pytest.mark.parametrize('with_cp', [False, True])
def test_channels_last_same_outputs_and_gradients(with_cp):
    # float64, so that rounding cannot hide a difference: the channels-last path (the default on CPU)
    # computes the same function as the contiguous one, outputs, gradients and BN statistics.
    torch.manual_seed(0)
    indices = (0, 4, 5, 7, 8, 9, 10, 11)
    ref = FishNet(arch='99', out_indices=indices, channels_last=False).double().train()
    fast = FishNet(arch='99', out_indices=indices, channels_last=True, with_cp=with_cp).double().train()
    fast.load_state_dict(ref.state_dict())
    x = torch.rand(2, 3, 64, 96, dtype=torch.float64)
    ref_outs, ref_grads = _outputs_and_gradients(ref, x)
    outs, grads = _outputs_and_gradients(fast, x)
    for a, b in zip(ref_outs, outs):
        assert b.is_contiguous(), 'outputs are returned in the usual NCHW layout'
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-7, atol=1e-9, msg=name)
    for (name, a), b in zip(ref.state_dict().items(), fast.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12, msg=name)


def test_channels_last_default_and_float32():
    assert FishNet(arch='99').channels_last
    assert FishNet(arch='99', norm_cfg=dict(type='GN', num_groups=16)).channels_last
    # conv layers that are not PyTorch's own may assume contiguous inputs: off unless asked for
    assert not FishNet(arch='99', out_indices=(1, ), conv_cfg=dict(type='ConvWS')).channels_last
    assert FishNet(arch='99', out_indices=(1, ), conv_cfg=dict(type='ConvWS'), channels_last=True).channels_last
    torch.manual_seed(0)
    ref = FishNet(arch='99', out_indices=(7, 11), channels_last=False).eval()
    fast = FishNet(arch='99', out_indices=(7, 11)).eval()
    fast.load_state_dict(ref.state_dict())
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        for a, b in zip(ref(x), fast(x)):
            # float32 rounding differs between the two layouts' kernels: compare against the output's scale
            assert (b - a).abs().max() <= 1e-5 * a.abs().max()


def test_group_norm():
    model = FishNet(arch='99', norm_cfg=dict(type='GN', num_groups=16, requires_grad=True))
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [320, 832, 1600, 2112]
    sum(o.sum() for o in outs).backward()
    assert model.stem[0].conv.weight.grad is not None


def test_syncbn_config_builds():
    model = FishNet(arch='99', norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def test_custom_arch_dict():
    """Catches an arch dict whose counts some stage ignores (e.g. a stage reading the named arch's table):
    every stage gets exactly the units asked for."""
    res, transfer = [1, 2, 1, 3, 2, 1, 2, 1, 2, 1], [2, 1, 3, 1, 2, 1]
    model = FishNet(arch=dict(res_blocks=res, transfer_blocks=transfer), out_indices=(10, )).eval()
    stages = FishNet.stage_names[1:11]
    trunks = [len(getattr(model, n).units if n.startswith('tail') else getattr(model, n).trunk) for n in stages]
    assert trunks == res
    assert [len(getattr(model, n).transfer) for n in stages[4:]] == transfer
    assert model(torch.rand(1, 3, 64, 64))[0].shape == (1, 2112, 2, 2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='100'), 'unknown FishNet arch'),
    (dict(arch=3.5), 'arch must be'),
    (dict(arch=dict(res_blocks=[1] * 10)), 'exactly the keys'),
    (dict(arch=dict(res_blocks=[1] * 9, transfer_blocks=[1] * 6)), '10 positive ints'),
    (dict(arch=dict(res_blocks=[1] * 10, transfer_blocks=[0] * 6)), '6 positive ints'),
    (dict(in_channels=0), 'in_channels'),
    (dict(stem_stride=2), 'stem_stride'),
    (dict(out_indices=()), 'non-empty'),
    (dict(out_indices=(12, )), 'out_indices entries'),
    (dict(out_indices=(-13, )), 'out_indices entries'),
    (dict(out_indices=('7', )), 'out_indices entries'),
    (dict(out_indices=(7, 7)), 'repeated'),
    (dict(frozen_stages=11), 'frozen_stages'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(frozen_stages=1.0), 'frozen_stages'),
    (dict(norm_cfg='BN'), 'norm_cfg'),
    (dict(norm_cfg=dict(type='NoSuchNorm')), 'NoSuchNorm'),
    (dict(conv_cfg='conv'), 'conv_cfg'),
    (dict(channels_last='yes'), 'channels_last'),
    (dict(bare_first_shortcut='yes'), 'bare_first_shortcut'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        FishNet(**kwargs)


@pytest.mark.parametrize('shape, match', [
    ((3, 64, 64), '4-D'),
    ((1, 1, 64, 64), 'in_channels=3'),
    ((1, 3, 64, 70), 'divisible by 32'),
    ((1, 3, 100, 64), 'divisible by 32'),
])
def test_invalid_inputs(shape, match):
    model = FishNet(arch='99')
    with pytest.raises(ValueError, match=match):
        model(torch.rand(*shape))


def test_accepts_arch_aliases():
    assert FishNet(arch=150, out_indices=(1, )).arch == FishNet.arch_settings['150']
    assert FishNet(arch='fishnet201', out_indices=(1, )).arch == FishNet.arch_settings['201']
