# Copyright (c) mmfishnet contributors. All rights reserved.
"""Loading converted ImageNet weights into a FishNet backbone strictly, naming what does not fit."""
from typing import Optional, Tuple

import torch

from .safe_load import CheckpointError, load_file, trust_requested

_BARE_FIRST_SHORTCUT = 'tail1.units.0.shortcut.weight'  # the conv of FishNet(bare_first_shortcut=True)


# The authors' released checkpoints (kevin-ssy/FishNet) name every tensor ``fish.fish.*`` (their ``Fish`` module
# inside ``FishNet``), saved from DataParallel with ``module.`` in front.
OFFICIAL_PREFIXES = ('fish.fish.', 'module.fish.fish.')


def is_official_checkpoint(state_dict: dict) -> bool:
    """Whether ``state_dict`` is an official (unconverted) FishNet checkpoint's: any key named like the
    authors' layout. Such a file must go through ``tools/model_converters/fishnet_to_mmfishnet.py`` first."""
    return any(str(key).startswith(OFFICIAL_PREFIXES) for key in state_dict)


def read_state_dict(path: str, trust: bool = False, map_location='cpu') -> Tuple[dict, dict]:
    """Read the checkpoint ``path`` (:func:`load_file`: a local file, a URL or another of mmengine's
    prefixes, ``weights_only`` unless ``trust``) and return the file's content and its state dict (the
    ``state_dict`` entry, or the whole file when it is a bare state dict).

    Raises :class:`CheckpointError` for a file that holds no state dict and for an official (unconverted)
    FishNet checkpoint, naming the converter command.
    """
    raw = load_file(path, trust=trust, map_location=map_location, trust_flag='--trust-checkpoint')
    state = raw.get('state_dict', raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f'{path} holds no state_dict')
    if is_official_checkpoint(state):
        raise CheckpointError(f'{path} is an official FishNet checkpoint; convert it first: python '
                              f'tools/model_converters/fishnet_to_mmfishnet.py {path} converted.pth')
    return raw, state


def load_pretrained_backbone(model: torch.nn.Module, checkpoint: str, prefix: str = '',
                             map_location='cpu', trust: Optional[bool] = None) -> dict:
    """Load ``checkpoint`` (its ``prefix`` part) into a FishNet backbone, refusing what does not fit.

    Unlike mmengine's ``Pretrained`` init (``strict=False``, mismatches only logged), every tensor of the
    stages the model builds must be present with the right shape; keys of stages it does not build (a
    classifier's score stage and head, for a detection backbone) are ignored. An official (unconverted)
    checkpoint, a ResNet checkpoint or one of another FishNet variant is named as such.
    ``checkpoint`` is a local file, a URL or another of mmengine's prefixes (see :func:`load_file`), read
    with ``weights_only=True`` unless ``trust`` (default: :func:`trust_requested`, i.e. ``--trust-checkpoint``).
    Returns ``dict(loaded=N, ignored=M)``.
    """
    raw, state = read_state_dict(checkpoint, trust=trust_requested() if trust is None else trust,
                                 map_location=map_location)
    keys = list(state)
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not state or not any(k.startswith(('stem.', 'tail1.')) for k in state):
        looks_resnet = any(k.startswith(('layer1.', f'{prefix}layer1.', 'conv1.', f'{prefix}conv1.')) for k in keys)
        kind = 'a ResNet checkpoint' if looks_resnet else 'not a FishNet checkpoint'
        raise CheckpointError(f'{checkpoint} is {kind}: no FishNet weights under prefix {prefix!r} (its keys '
                              f'start like {", ".join(keys[:3])})')
    own = model.state_dict()
    mismatch = describe_mismatch(own, state, extra_in=getattr(model, 'built_stages', 'all'))
    if mismatch:
        meta_arch = raw.get('meta', {}).get('arch') if isinstance(raw.get('meta'), dict) else None
        hint = f' (it was converted from {meta_arch})' if meta_arch else ''
        raise CheckpointError(f'{checkpoint} does not fit this FishNet{hint}: {mismatch}. Is it a checkpoint of '
                              f'another arch?')
    model.load_state_dict({k: state[k] for k in own}, strict=True)
    return dict(loaded=len(own), ignored=len(state) - len(own))


def describe_mismatch(own: dict, weights: dict, extra_in=None):
    """None when every tensor of ``own`` is in ``weights`` with its shape (and, with ``extra_in``, ``weights``
    holds nothing more there), else what is missing, of another shape or extra, with examples.

    ``extra_in``: where tensors the model lacks count as a mismatch: ``'all'``, or the names of the stages
    the model builds (a backbone's checkpoint may hold stages it does not build, a classifier's ``score``).
    Missing keys alone are not enough: FishNet-99's tensors are a subset of FishNet-150's with the same
    shapes, so a FishNet-150 checkpoint would pass for a FishNet-99 model."""
    missing = [k for k in own if k not in weights]
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    extra = [] if extra_in is None else [
        k for k in weights if k not in own and (extra_in == 'all' or k.split('.')[0] in extra_in)]
    parts = []
    if missing:
        parts.append(f'{len(missing)} of the model\'s {len(own)} tensors are missing, e.g. {", ".join(missing[:3])}')
    if wrong:
        parts.append(f'{len(wrong)} have another shape, e.g. {wrong[0]} {tuple(weights[wrong[0]].shape)} vs '
                     f'{tuple(own[wrong[0]].shape)}')
    if extra:
        parts.append(f'{len(extra)} tensors are not in the model, e.g. {", ".join(extra[:3])}')
    bare = [any(k.endswith(_BARE_FIRST_SHORTCUT) for k in tensors) for tensors in (own, weights)]
    if parts and bare[0] != bare[1]:
        parts.append("the checkpoint has a bare conv as tail1's first shortcut (FishNet-201 welltrain "
                     'weights): build the backbone with bare_first_shortcut=True' if bare[1] else
                     "the model has a bare conv as tail1's first shortcut (bare_first_shortcut=True) and the "
                     'checkpoint a pre-activated one: set it False, or convert the FishNet-201 welltrain '
                     'weights again (converters before this option added a norm there)')
    return '; '.join(parts) or None
