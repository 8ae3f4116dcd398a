# Copyright (c) mmfishnet contributors. All rights reserved.
"""Conversion of the authors' released FishNet ImageNet checkpoints to mmfishnet's layout.

The official files (``fishnet99_ckpt.tar``, ``fishnet150_ckpt.tar``, ``fishnet150_ckpt_welltrained.tar``,
``fishnet201_ckpt_welltrain.tar``) are ``torch.save`` dicts holding ``state_dict`` with keys prefixed
``module.``. The converted checkpoint loads with ``strict=True`` into mmpretrain's
``ImageClassifier(backbone=FishNet(out_indices=(11,)), neck=GlobalAveragePooling, head=LinearClsHead)``,
and its ``backbone.`` part into any FishNet backbone (e.g. the detection one, through
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``), built with the FishNet arguments
the checkpoint's ``meta['backbone_args']`` names (``bare_first_shortcut=True`` for FishNet-201 welltrain).
"""
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

from mmfishnet.utils.errors import ConversionError

# Renames that bring each "well-trained" layout back to the layout of the released model definition.
WELLTRAINED_RENAMES = {
    'welltrained150': [('fish.fish.3.1.0.', 'fish.fish.3.0.2.'), ('fish.fish.3.1.1.', 'fish.fish.3.0.3.'),
                       ('fish.fish.3.1.3.', 'fish.fish.3.1.'), ('fish.fish.9.4.0.', 'fish.fish.9.3.2.'),
                       ('fish.fish.9.4.1.', 'fish.fish.9.3.3.'), ('fish.fish.9.4.4.', 'fish.fish.9.4.1.')],
    'welltrain201': [('fish.fish.3.1.0.', 'fish.fish.3.0.2.'), ('fish.fish.3.1.1.', 'fish.fish.3.0.3.'),
                     ('fish.fish.3.1.3.', 'fish.fish.3.1.'), ('fish.fish.9.2.0.', 'fish.fish.9.3.0.'),
                     ('fish.fish.9.3.0.', 'fish.fish.9.3.2.'), ('fish.fish.9.3.1.', 'fish.fish.9.3.3.'),
                     ('fish.fish.9.3.4.', 'fish.fish.9.4.1.')],
}
# FishNet arguments a layout's weights need beyond the released model definition: the first unit of
# fishnet201_ckpt_welltrain.tar has a bare conv as its projection shortcut (``fish.fish.0.0.0.shortcut.weight``,
# no pre-activation norm), which only ``bare_first_shortcut=True`` computes in training mode as well.
LAYOUT_BACKBONE_ARGS = {'welltrain201': dict(bare_first_shortcut=True)}

# Where our modules are in the authors' model (kevin-ssy/FishNet ``models/fishnet.py``): their stem convs
# ``conv1-3`` are (conv, BN) pairs; ``fish.fish.i`` is stage i (0-2 tails, 3 the bridge, 4-6 bodies, 7-9
# heads) holding [trunk units, transfer units, sampling]; the bridge holds [BN-ReLU-conv-BN-ReLU, conv,
# trunk units, [attention]]; head3 adds [score conv, [pool, fc]]. Below these prefixes both layouts name
# tensors alike (``bn1``, ``conv1``, ..., ``shortcut.0/2``, Sequential indices).
_BRIDGE_PARTS = (('0.', 'reduce.'), ('1.', 'expand.'), ('2.', 'trunk.'), ('3.0.', 'attention.'))
_REFINE_PARTS = (('0.', 'trunk.'), ('1.', 'transfer.'))


def _prefix_pairs() -> List[Tuple[str, str]]:
    """(official prefix, mmpretrain ImageClassifier prefix) for every module holding tensors, one pair
    per part of each of FishNet's named stages, in the model's order."""
    from mmfishnet.models import FishNet
    pairs = []
    for i in range(3):
        pairs += [(f'conv{i + 1}.0.', f'backbone.stem.{i}.conv.'), (f'conv{i + 1}.1.', f'backbone.stem.{i}.bn.')]
    for index, name in enumerate(FishNet.stage_names[1:-1]):  # the authors' fish.fish.0 .. 9
        official, ours = f'fish.fish.{index}.', f'backbone.{name}.'
        if name == 'bridge':
            parts = _BRIDGE_PARTS
        elif name.startswith('tail'):
            parts = (('0.', 'units.'), )
        else:
            parts = _REFINE_PARTS
        pairs += [(official + a, ours + b) for a, b in parts]
    pairs += [('fish.fish.9.3.', 'backbone.score.'), ('fish.fish.9.4.1.', 'head.fc.')]
    return pairs


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
    """'99', '150' or '201' from the number of residual units of tail3 (original layout keys), the
    count by which FishNet's arch table tells the variants apart."""
    from mmfishnet.models import FishNet
    tail3 = FishNet.stage_names.index('tail3') - 1  # the authors' stage index
    units = {k.split('.')[4] for k in state_dict if k.startswith(f'fish.fish.{tail3}.0.')}
    by_units = {settings['res_blocks'][tail3]: arch for arch, settings in FishNet.arch_settings.items()}
    if len(units) not in by_units:
        known = ', '.join(f'{arch}: {n}' for n, arch in by_units.items())
        raise ConversionError(f'cannot tell the FishNet variant: tail3 has {len(units)} residual units '
                              f'({known})')
    return by_units[len(units)]


def convert_official_state_dict(official: Dict[str, torch.Tensor]) -> Tuple['OrderedDict', dict]:
    """Convert an official state dict (any layout, with or without ``module.``).

    Returns the converted state dict (mmpretrain ``ImageClassifier`` keys, ``backbone.*`` and
    ``head.fc.*``) and info (``arch``, ``layout``, ``notes``, ``backbone_args``: the FishNet arguments
    the weights need, see :data:`LAYOUT_BACKBONE_ARGS`). ``num_batches_tracked`` buffers are
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
    backbone_args = LAYOUT_BACKBONE_ARGS.get(layout, {})
    if backbone_args:
        notes.append('tail1 unit 0 of these weights has a bare conv1x1 shortcut: build the backbone with '
                     + ', '.join(f'{k}={v!r}' for k, v in backbone_args.items())
                     + ' (the FishNet-201 configs that start from them do; recorded in meta.backbone_args)')

    expected = expected_official_shapes(arch, **backbone_args)
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
    pairs = _prefix_pairs()
    for key, value in state.items():
        new_key = _swap_prefix(key, pairs, 0)
        if new_key == 'head.fc.weight':
            value = value.reshape(value.shape[0], -1)  # 1x1 conv on pooled features == linear
        converted[new_key] = value
        if new_key.endswith('.running_var'):
            converted[new_key[:-len('running_var')] + 'num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    return converted, dict(arch=arch, layout=layout, notes=notes, backbone_args=dict(backbone_args))


def _swap_prefix(key: str, pairs, which: int) -> str:
    for pair in pairs:
        if key.startswith(pair[which]):
            return pair[1 - which] + key[len(pair[which]):]
    side = 'official' if which == 0 else 'mmfishnet'
    raise ConversionError(f'no FishNet module holds the {side} key {key!r}')


def map_official_key(key: str) -> str:
    """The mmpretrain ImageClassifier key of an official (original layout) key."""
    return _swap_prefix(key, _prefix_pairs(), 0)


def expected_official_shapes(arch: str, **backbone_args) -> Dict[str, tuple]:
    """Official key -> shape for ``arch``, in the authors' key order: every tensor of mmfishnet's own
    FishNet classifier (and the authors' 1000-class fc, a 1x1 conv), named as the authors name it.
    ``backbone_args``: further FishNet arguments (:data:`LAYOUT_BACKBONE_ARGS`)."""
    from mmfishnet.models import FishNet
    with torch.device('meta'):  # shapes only: no memory, no initialisation
        model = FishNet(arch=arch, out_indices=(len(FishNet.stage_names) - 1, ), **backbone_args)
    ours = {f'backbone.{k}': tuple(v.shape) for k, v in model.state_dict().items()
            if not k.endswith('num_batches_tracked')}
    ours['head.fc.weight'] = (1000, model.out_channels[0], 1, 1)
    ours['head.fc.bias'] = (1000, )
    pairs = _prefix_pairs()
    return {_swap_prefix(key, pairs, 1): shape for key, shape in ours.items()}


def official_key_names(arch: str) -> List[str]:
    """The official state-dict keys (original layout, without ``module.`` and ``num_batches_tracked``)."""
    return list(expected_official_shapes(arch))


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
                backbone_args=info['backbone_args'], converter='mmfishnet fishnet_to_mmfishnet')
    atomic_save(dict(state_dict=converted, meta=meta), dst)
    info['num_tensors'] = len(converted)
    return info
