import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, build_classifier
from mmfishnet.converters import (ConversionError, convert_official_state_dict, expected_official_shapes,
                                  official_key_names)

KEYS = json.load(open(os.path.join(ROOT, 'tests', 'data', 'fishnet_official_keys.json')))
CONVERTER = os.path.join(ROOT, 'tools', 'model_converters', 'fishnet_to_mmfishnet.py')


def fake_official(layout, seed=0, module_prefix=True, with_nbt=True):
    """Random tensors in an official layout (as the authors' files store them)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in KEYS[layout].items():
        if key.endswith('running_var'):
            value = torch.rand(shape, generator=g) + 0.5
        else:
            value = torch.randn(shape, generator=g)
        state[('module.' if module_prefix else '') + key] = value
        if with_nbt and key.endswith('running_var'):
            state[('module.' if module_prefix else '') + key[:-len('running_var')] + 'num_batches_tracked'] = \
                torch.tensor(100)
    return state


@pytest.mark.parametrize('arch', ['99', '150', '201'])
def test_key_enumeration_matches_the_official_layout(arch):
    """Catches a FishNet whose tensors differ from the authors' (a missing, extra or misshapen tensor,
    another order of units) and a converter prefix table that names a module the authors name otherwise:
    the official keys derived from our model must be the authors' model's keys, order and shapes
    (tests/data/fishnet_official_keys.json, read off their code: tests/data/README.md)."""
    assert official_key_names(arch) == list(KEYS[f'fishnet{arch}'])
    assert expected_official_shapes(arch) == {k: tuple(v) for k, v in KEYS[f'fishnet{arch}'].items()}


@pytest.mark.parametrize('layout, arch', [('fishnet99', '99'), ('fishnet150', '150'), ('fishnet201', '201'),
                                          ('fishnet150_welltrained', '150')])
def test_converts_one_to_one_and_loads_strictly(layout, arch):
    official = fake_official(layout)
    converted, info = convert_official_state_dict(official)
    assert info['arch'] == arch
    tensors = [v for k, v in converted.items() if not k.endswith('num_batches_tracked')]
    assert len(tensors) == len(KEYS[layout])
    # every official tensor lands exactly once, unchanged (up to the fc reshape)
    official_values = {k: v for k, v in official.items() if not k.endswith('num_batches_tracked')}
    by_sum = sorted(round(float(v.double().sum()), 4) for v in official_values.values())
    assert by_sum == sorted(round(float(v.double().sum()), 4) for v in tensors)
    model = build_classifier(arch)
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.head.fc.weight, official['module.fish.fish.9.4.1.weight' if layout != 'fishnet150_welltrained'
                                                      else 'module.fish.fish.9.4.4.weight'].flatten(1))


@pytest.mark.parametrize('welltrained, original', [('fishnet150_welltrained', 'fishnet150'),
                                                     ('fishnet201_welltrain', 'fishnet201')])
def test_welltrained_and_original_layouts_agree(welltrained, original):
    """Catches a wrong entry of the converter's rename table for the "well-trained" files: the same
    tensors stored under the well-trained names (which take the place of the names they replace, see
    tests/data/README.md) must convert to exactly the tensors the original layout converts to."""
    official = fake_official(original, seed=3, module_prefix=False, with_nbt=False)
    bare = original == 'fishnet201'  # its well-trained file lacks the first shortcut's BN
    first_shortcut = 'backbone.tail1.units.0.shortcut.'
    values = [v for k, v in official.items() if not (bare and k.startswith('fish.fish.0.0.0.shortcut.0.'))]
    assert len(values) == len(KEYS[welltrained])
    renamed = dict(zip(KEYS[welltrained], values))
    expected, _ = convert_official_state_dict(official)
    if bare:  # the same conv weight as the bare shortcut conv (bare_first_shortcut=True) of the test below
        expected = {(first_shortcut + 'weight' if k == first_shortcut + '2.weight' else k): v
                    for k, v in expected.items() if not k.startswith(first_shortcut + '0.')}
    converted, info = convert_official_state_dict(renamed)
    assert info['layout'] == {'fishnet150': 'welltrained150', 'fishnet201': 'welltrain201'}[original]
    assert info['backbone_args'] == (dict(bare_first_shortcut=True) if bare else {})
    assert converted.keys() == expected.keys()
    for key in expected:
        assert torch.equal(converted[key], expected[key]), key


def test_welltrain201_computes_the_authors_function_in_training_mode():
    """Bug (#19, item 7): the converter put an identity BN and a ReLU in front of the bare conv that is
    the first projection shortcut (tail1 unit 0) of the authors' FishNet-201 welltrain weights. Exact in
    eval mode, but in training mode (the UPerNet FishNet-201 configs fine-tune with norm_eval=False) that
    BN normalises with the batch's statistics and its weight and bias train: a function the authors never
    trained. The converted model (built with the FishNet arguments the conversion names) must compute, in
    training mode, the same outputs and gradients as the authors' structure, built here by hand: the
    released definition's network with that shortcut replaced by a bare conv1x1 holding the file's tensor
    ``fish.fish.0.0.0.shortcut.weight`` (the key names a Conv2d module as the whole shortcut).
    Compared on the stem and tail1 (where the shortcut is; the later stages are the same modules either way)."""
    from mmfishnet.models import FishNet
    official = fake_official('fishnet201_welltrain', seed=1)
    converted, info = convert_official_state_dict(official)
    model = FishNet(arch='201', out_indices=(1, ), **info.get('backbone_args', {}))
    weights = {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith(('backbone.stem.',
                                                                                       'backbone.tail1.'))}
    model.load_state_dict(weights, strict=True)
    authors = FishNet(arch='201', out_indices=(1, ))  # the released definition
    authors.load_state_dict(weights, strict=False)  # all but the first shortcut, set next
    bare = torch.nn.Conv2d(64, 128, 1, bias=False)
    bare.weight.data.copy_(official['module.fish.fish.0.0.0.shortcut.weight'])
    authors.tail1.units[0].shortcut = bare
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    outputs = []
    for net in (model, authors):
        net.train()
        out = net(x)[0]
        out.pow(2).sum().backward()
        outputs.append((out.detach(), {k: p.grad for k, p in net.named_parameters()}))
    torch.testing.assert_close(outputs[0][0], outputs[1][0])
    assert sorted(outputs[0][1]) == sorted(outputs[1][1])  # no norm of its own that would train there
    for name, grad in outputs[1][1].items():
        torch.testing.assert_close(outputs[0][1][name], grad, msg=name)


def test_rejects_incomplete_and_foreign_keys():
    official = fake_official('fishnet99', with_nbt=False, module_prefix=False)
    del official['fish.fish.5.1.0.conv2.weight']
    official['fish.fish.5.1.7.conv2.weight'] = torch.zeros(1)
    with pytest.raises(ConversionError) as e:
        convert_official_state_dict(official)
    assert 'missing keys (1): fish.fish.5.1.0.conv2.weight' in str(e.value)
    assert 'unexpected keys (1): fish.fish.5.1.7.conv2.weight' in str(e.value)


def test_rejects_wrong_shapes():
    official = fake_official('fishnet99', with_nbt=False)
    official['module.fish.fish.9.4.1.weight'] = torch.zeros(10, 1056, 1, 1)
    with pytest.raises(ConversionError, match='wrong shapes: fish.fish.9.4.1.weight'):
        convert_official_state_dict(official)


def test_rejects_a_resnet_or_converted_checkpoint():
    with pytest.raises(ConversionError, match='ResNet or an already converted'):
        convert_official_state_dict({'conv1.weight': torch.zeros(1), 'layer1.0.conv1.weight': torch.zeros(1)})
    converted, _ = convert_official_state_dict(fake_official('fishnet99'))
    with pytest.raises(ConversionError, match='already converted'):
        convert_official_state_dict(converted)


def run_converter(*args):
    return subprocess.run([sys.executable, CONVERTER, *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_round_trip(tmp_path):
    src, dst = tmp_path / 'fishnet99_ckpt.tar', tmp_path / 'fishnet99_in1k.pth'
    torch.save({'state_dict': fake_official('fishnet99'), 'best_prec1': 77.41, 'epoch': 100, 'arch': 'fishnet99'},
               src)
    proc = run_converter(str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert 'FishNet-99' in proc.stdout
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['arch'] == 'fishnet99'
    model = build_classifier('99')
    model.load_state_dict(ckpt['state_dict'], strict=True)
    # and the backbone part into the detection backbone through init_cfg
    from mmfishnet.models import FishNet
    det = FishNet(arch='99', init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    det.init_weights()
    assert torch.equal(det.head3.trunk[0].conv2.weight, model.backbone.head3.trunk[0].conv2.weight)


@pytest.mark.parametrize('content, match', [
    (None, 'no such checkpoint file'),
    (b'not a checkpoint at all', 'cannot be read as a torch checkpoint'),
    ('dict', 'holds no state_dict'),
])
def test_cli_bad_source_is_one_line(tmp_path, content, match):
    src = tmp_path / 'src.tar'
    if isinstance(content, bytes):
        src.write_bytes(content)
    elif content == 'dict':
        torch.save({'epoch': 3}, src)
    proc = run_converter(str(src), str(tmp_path / 'out.pth'))
    assert proc.returncode == 2
    assert proc.stderr.startswith('error: ') and match in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def test_cli_incomplete_source_lists_keys(tmp_path):
    official = fake_official('fishnet99')
    del official['module.fish.fish.3.1.bias']
    torch.save({'state_dict': official}, tmp_path / 'src.tar')
    proc = run_converter(str(tmp_path / 'src.tar'), str(tmp_path / 'out.pth'))
    assert proc.returncode == 2 and 'fish.fish.3.1.bias' in proc.stderr and 'Traceback' not in proc.stderr
