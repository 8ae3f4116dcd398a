# Copyright (c) mmfishnet contributors. All rights reserved.
"""Conversion of the authors' released FishNet ImageNet checkpoints to mmfishnet's layout.

The official files (``fishnet99_ckpt.tar``, ``fishnet150_ckpt.tar``, ``fishnet150_ckpt_welltrained.tar``,
``fishnet201_ckpt_welltrain.tar``) are ``torch.save`` dicts holding ``state_dict`` with keys prefixed
``module.``. The converted checkpoint loads with ``strict=True`` into mmpretrain's
``ImageClassifier(backbone=FishNet(out_indices=(11,)), neck=GlobalAveragePooling, head=LinearClsHead)``,
and its ``backbone.`` part into any FishNet backbone (e.g. the detection one, through
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

# Renames that bring each "well-trained" layout back to the layout of the released model definition.
WELLTRAINED_RENAMES = {
    'welltrained150': [('fish.fish.3.1.0.', 'fish.fish.3.0.2.'), ('fish.fish.3.1.1.', 'fish.fish.3.0.3.'),
                       ('fish.fish.3.1.3.', 'fish.fish.3.1.'), ('fish.fish.9.4.0.', 'fish.fish.9.3.2.'),
                       ('fish.fish.9.4.1.', 'fish.fish.9.3.3.'), ('fish.fish.9.4.4.', 'fish.fish.9.4.1.')],
    'welltrain201': [('fish.fish.0.0.0.shortcut.weight', 'fish.fish.0.0.0.shortcut.2.weight'),
                     ('fish.fish.3.1.0.', 'fish.fish.3.0.2.'), ('fish.fish.3.1.1.', 'fish.fish.3.0.3.'),
                     ('fish.fish.3.1.3.', 'fish.fish.3.1.'), ('fish.fish.9.2.0.', 'fish.fish.9.3.0.'),
                     ('fish.fish.9.3.0.', 'fish.fish.9.3.2.'), ('fish.fish.9.3.1.', 'fish.fish.9.3.3.'),
                     ('fish.fish.9.3.4.', 'fish.fish.9.4.1.')],
}

_TAILS = {'0': 'tail1', '1': 'tail2', '2': 'tail3'}
_REFINES = {'4': 'body1', '5': 'body2', '6': 'body3', '7': 'head1', '8': 'head2', '9': 'head3'}
# Official key prefix (original layout) -> mmpretrain ImageClassifier key prefix. First match wins.
KEY_RULES: List[Tuple[str, object]] = [
    (r'conv([123])\.0\.', lambda m: f'backbone.stem.{int(m[1]) - 1}.conv.'),
    (r'conv([123])\.1\.', lambda m: f'backbone.stem.{int(m[1]) - 1}.bn.'),
    (r'fish\.fish\.([012])\.0\.', lambda m: f'backbone.{_TAILS[m[1]]}.units.'),
    (r'fish\.fish\.3\.0\.', 'backbone.bridge.reduce.'),
    (r'fish\.fish\.3\.1\.', 'backbone.bridge.expand.'),
    (r'fish\.fish\.3\.2\.', 'backbone.bridge.trunk.'),
    (r'fish\.fish\.3\.3\.0\.', 'backbone.bridge.attention.'),
    (r'fish\.fish\.9\.3\.', 'backbone.score.'),
    (r'fish\.fish\.9\.4\.1\.', 'head.fc.'),
    (r'fish\.fish\.([4-9])\.0\.', lambda m: f'backbone.{_REFINES[m[1]]}.trunk.'),
    (r'fish\.fish\.([4-9])\.1\.', lambda m: f'backbone.{_REFINES[m[1]]}.transfer.'),
]
# Residual units in tail3 (official stage 2) tell the variants apart.
_ARCH_BY_TAIL3_UNITS = {6: '99', 8: '150', 12: '201'}


class ConversionError(ValueError):
    """The source is not a complete official FishNet checkpoint."""


def strip_module_prefix(state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state_dict.items())


def detect_layout(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'original'``, ``'welltrained150'`` or ``'welltrain201'`` (keys without ``module.``)."""
    if 'fish.fish.3.0.2.weight' in state_dict and 'fish.fish.9.4.1.weight' in state_dict:
        return 'original'
    if 'fish.fish.3.1.0.weight' in state_dict:
        if 'fish.fish.9.4.4.weight' in state_dict:
            return 'welltrained150'
        if 'fish.fish.9.3.4.weight' in state_dict:
            return 'welltrain201'
    if any(k.startswith(('layer1.', 'backbone.', 'fc.weight')) for k in state_dict):
        raise ConversionError('this is not an official FishNet checkpoint (its keys look like a '
                              'ResNet or an already converted checkpoint); pass an official *_ckpt.tar')
    raise ConversionError('this is not an official FishNet checkpoint: found neither the bridge '
                          "convolution 'fish.fish.3.0.2.weight' nor a well-trained layout's "
                          "'fish.fish.3.1.0.weight'")


def _rename(state_dict, renames):
    out = OrderedDict()
    for key, value in state_dict.items():
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def infer_arch(state_dict: Dict[str, torch.Tensor]) -> str:
    """'99', '150' or '201' from the number of residual units of tail3 (original layout keys)."""
    units = {k.split('.')[4] for k in state_dict if k.startswith('fish.fish.2.0.')}
    arch = _ARCH_BY_TAIL3_UNITS.get(len(units))
    if arch is None:
        raise ConversionError(f'cannot tell the FishNet variant: tail3 has {len(units)} residual units '
                              f'(99: 6, 150: 8, 201: 12)')
    return arch


def convert_official_state_dict(official: Dict[str, torch.Tensor]) -> Tuple['OrderedDict', dict]:
    """Convert an official state dict (any layout, with or without ``module.``).

    Returns the converted state dict (mmpretrain ``ImageClassifier`` keys, ``backbone.*`` and
    ``head.fc.*``) and info (``arch``, ``layout``, ``notes``). ``num_batches_tracked`` buffers are
    added where the source lacks them. Raises :class:`ConversionError` listing every key that is missing
    or does not belong, or whose shape is off.
    """
    state = strip_module_prefix(official)
    state = OrderedDict((k, v) for k, v in state.items() if not k.endswith('num_batches_tracked'))
    layout = detect_layout(state)
    notes = []
    if layout != 'original':
        state = _rename(state, WELLTRAINED_RENAMES[layout])
        notes.append(f'renamed the {layout} layout to the released model definition')
    arch = infer_arch(state)

    expected = expected_official_shapes(arch)
    if layout == 'welltrain201':
        # Its first projection shortcut is a bare conv. Its input (the stem's max-pooled ReLU output)
        # is non-negative, so BN-ReLU-conv with an identity BN computes exactly the same.
        prefix = 'fish.fish.0.0.0.shortcut.0.'
        if not any(k.startswith(prefix) for k in state):
            channels = expected[prefix + 'weight'][0]
            eps = 1e-5
            state[prefix + 'weight'] = torch.ones(channels)
            state[prefix + 'bias'] = torch.zeros(channels)
            state[prefix + 'running_mean'] = torch.zeros(channels)
            state[prefix + 'running_var'] = torch.full((channels, ), 1 - eps)
            notes.append('tail1 unit 0 shortcut: the source has a bare conv; added an identity BN '
                         '(exact, its input is non-negative)')
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        lines = [f'the source is not a complete official FishNet-{arch} checkpoint ({layout} layout):']
        if missing:
            lines.append(f'  missing keys ({len(missing)}): ' + ', '.join(missing))
        if unexpected:
            lines.append(f'  unexpected keys ({len(unexpected)}): ' + ', '.join(unexpected))
        if wrong:
            lines.append('  wrong shapes: ' + ', '.join(
                f'{k} {tuple(state[k].shape)} != {expected[k]}' for k in wrong))
        raise ConversionError('\n'.join(lines))

    converted = OrderedDict()
    for key, value in state.items():
        new_key = map_official_key(key)
        if new_key == 'head.fc.weight':
            value = value.reshape(value.shape[0], -1)  # 1x1 conv on pooled features == linear
        converted[new_key] = value
        if new_key.endswith('.running_var'):
            converted[new_key[:-len('running_var')] + 'num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    return converted, dict(arch=arch, layout=layout, notes=notes)


def map_official_key(key: str) -> str:
    for pattern, replacement in KEY_RULES:
        match = re.match(pattern, key)
        if match:
            prefix = replacement(match) if callable(replacement) else replacement
            return prefix + key[match.end():]
    raise ConversionError(f'no rule maps the official key {key!r}')


def expected_official_shapes(arch: str) -> Dict[str, tuple]:
    """Official key -> shape for ``arch``, derived from mmfishnet's own FishNet (inverse mapping)."""
    from mmfishnet.models import FishNet
    model = FishNet(arch=arch, out_indices=(11, ))
    ours = {f'backbone.{k}': tuple(v.shape) for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}
    score_channels = model.stage_channels['score']
    ours['head.fc.weight'] = (1000, score_channels, 1, 1)
    ours['head.fc.bias'] = (1000, )
    inverse = {}
    for key in official_key_names(arch):
        inverse[key] = ours[map_official_key(key)]
    if len(inverse) != len(ours):
        raise AssertionError('official key list and mmfishnet FishNet disagree')
    return inverse


def official_key_names(arch: str) -> List[str]:
    """The official state-dict key names (original layout, without ``module.`` and
    ``num_batches_tracked``), enumerated from the block counts."""
    from mmfishnet.models import FishNet
    settings = FishNet.arch_settings[arch]
    res, trans = settings['res_blocks'], settings['transfer_blocks']
    bn = ('weight', 'bias', 'running_mean', 'running_var')
    keys = []
    for i in (1, 2, 3):
        keys += [f'conv{i}.0.weight'] + [f'conv{i}.1.{p}' for p in bn]

    def units(prefix, n, first_projection):
        out = []
        for u in range(n):
            for j in (1, 2, 3):
                out += [f'{prefix}.{u}.bn{j}.{p}' for p in bn] + [f'{prefix}.{u}.conv{j}.weight']
            if u == 0 and first_projection:
                out += [f'{prefix}.{u}.shortcut.0.{p}' for p in bn] + [f'{prefix}.{u}.shortcut.2.weight']
        return out

    for stage in range(10):
        if stage == 3:
            keys += [f'fish.fish.3.0.0.{p}' for p in bn] + ['fish.fish.3.0.2.weight']
            keys += [f'fish.fish.3.0.3.{p}' for p in bn] + ['fish.fish.3.1.weight', 'fish.fish.3.1.bias']
            keys += units('fish.fish.3.2', res[3], True)
            keys += [f'fish.fish.3.3.0.0.{p}' for p in bn]
            keys += [f'fish.fish.3.3.0.{i}.{p}' for i in (3, 5) for p in ('weight', 'bias')]
            continue
        # projection shortcut where a stage's first unit changes width without the channel reduction:
        # the tails; heads and bodies keep it (bodies use r(x), heads keep their width)
        keys += units(f'fish.fish.{stage}.0', res[stage], first_projection=stage < 3)
        if stage > 3:
            keys += units(f'fish.fish.{stage}.1', trans[stage - 4], False)
    keys += [f'fish.fish.9.3.0.{p}' for p in bn] + ['fish.fish.9.3.2.weight']
    keys += [f'fish.fish.9.3.3.{p}' for p in bn] + ['fish.fish.9.4.1.weight', 'fish.fish.9.4.1.bias']
    return keys


def convert_checkpoint_file(src: str, dst: str, trust_source: bool = False) -> dict:
    """Read an official checkpoint file, convert it and write ``{'state_dict', 'meta'}`` to ``dst``
    (atomically). Returns the conversion info."""
    from mmfishnet.utils.checkpoint import atomic_save, load_file
    source = load_file(src, trust=trust_source)
    if isinstance(source, dict) and isinstance(source.get('state_dict'), dict):
        official = source['state_dict']
    elif isinstance(source, dict) and source and all(isinstance(v, torch.Tensor) for v in source.values()):
        official = source  # a bare state dict
    else:
        raise ConversionError(f'{src} holds no state_dict: expected an official FishNet checkpoint '
                              f'(a dict with a "state_dict" entry)')
    converted, info = convert_official_state_dict(official)
    meta = dict(arch=f"fishnet{info['arch']}", source=str(src), layout=info['layout'],
                converter='mmfishnet fishnet_to_mmfishnet')
    atomic_save(dict(state_dict=converted, meta=meta), dst)
    info['num_tensors'] = len(converted)
    return info
