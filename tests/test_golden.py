"""Our converter and FishNet against the authors' model: the outputs their public code computes for
seeded official-layout weights (tests/data/fishnet_golden.npz; how it was made: tests/data/README.md).

Each test names the wiring details it guards; a mistake in any of them changes the outputs far beyond
float rounding (both sides compute in float64, the fixture keeps float32)."""
import pytest
import torch

from golden import RECORDED, assert_matches_authors, golden_input, golden_outputs, golden_weights, official_keys
from helpers import build_classifier
from mmfishnet.converters import convert_official_state_dict, map_official_key
from mmfishnet.models import FishNet

GOLDEN = golden_outputs()
OUT_INDICES = tuple(FishNet.stage_names.index(name) for name in RECORDED[:-1])  # the stages, not the logits


@pytest.mark.parametrize('arch, channels_last', [('99', True), ('99', False), ('150', True)])
def test_converted_weights_reproduce_the_authors_outputs(arch, channels_last):
    """Catches any difference from the authors' network for the same weights: concatenation order (trunk
    first), which channels r(x) sums (adjacent ones; both memory-format code paths), the bridge (its
    reduce/expand convs and out = trunk(s) * a + a with the SE-like attention), nearest up-sampling and
    max-pool down-sampling, the body's dilations (1, 2, 4), the transfer sources, the stem, the score
    feature and the classifier, and the converter's key mapping (a misplaced tensor changes the output).
    FishNet-99 and 150 differ in block counts, so a count-dependent mistake shows in one of them."""
    model = build_classifier(arch, out_indices=OUT_INDICES, channels_last=channels_last)
    converted, info = convert_official_state_dict(golden_weights(arch))
    assert info['arch'] == arch
    model.double().eval()  # float64 before loading: the weights are float64, as on the authors' side
    model.load_state_dict(converted, strict=True)
    x = golden_input()
    with torch.no_grad():
        feats = model.backbone(x)
        logits = model(x, mode='tensor')
    for name, feat in zip(RECORDED, feats):
        assert_matches_authors(name, feat, arch, GOLDEN)
    assert_matches_authors('logits', logits, arch, GOLDEN)


def test_initialisation_is_the_authors():
    """Catches an initialisation that differs from the authors' (kevin-ssy/FishNet ``_init_weights``):
    conv weights ~ N(0, sqrt(2 / (k*k*C_out))) (a fan-in instead of fan-out, a forgotten conv, or
    mmengine's ``init_weights`` re-initialising a layer afterwards), norm weights 1 and biases 0,
    running statistics 0 / 1, conv biases left at PyTorch's default. The reference is the mean and
    standard deviation of every tensor of the authors' own freshly built fishnet99, in their key order."""
    torch.manual_seed(0)
    model = FishNet(arch='99', out_indices=(11, ))
    model.init_weights()  # what the Runner calls
    ours = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    for key, mean, std in zip(official_keys('99'), GOLDEN['init99_mean'], GOLDEN['init99_std']):
        mapped = map_official_key(key)
        if not mapped.startswith('backbone.'):
            continue  # the classifier's fc is mmpretrain's LinearClsHead, with its own init_cfg
        value = ours[mapped].double()
        n = value.numel()
        if std == 0:
            assert torch.all(value == mean), f'{key} ({mapped}) should be all {mean}'
        else:
            # two independent samples of one distribution: the ratio of their standard deviations is
            # 1 within ~1/sqrt(n); 6 of those (and at least 5 %) cannot fail by chance
            assert abs(value.std().item() / std - 1) < max(0.05, 6 / n ** 0.5), f'{key} ({mapped}) std'
            assert abs(value.mean().item() - mean) < 6 * std * (2 / n) ** 0.5, f'{key} ({mapped}) mean'
