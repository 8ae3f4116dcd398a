"""The golden fixture's weights and input, regenerated from a seed (see tests/data/README.md).

The weights are in the official layout of the authors' released model definition (kevin-ssy/FishNet
``models/fishnet.py``): every key of ``tests/data/fishnet_official_keys.json``, in that file's order (the
order of the authors' ``state_dict()``), drawn one after the other from NumPy's legacy ``RandomState``,
whose stream NumPy keeps fixed across versions (NEP 19), so the same seed gives the same numbers
anywhere. ``tests/data/make_fishnet_golden.py`` loads them into the authors' model and records its
outputs; ``tests/test_golden.py`` loads them, converted, into ours.

- conv weights: the authors' initialisation, N(0, sqrt(2 / (k_h * k_w * C_out)));
- conv biases (the bridge's 1x1 convs, the classifier): PyTorch's default, which the authors keep,
  U(-1/sqrt(fan_in), 1/sqrt(fan_in));
- norm layers: random instead of the authors' 1 / 0 and PyTorch's 0 / 1 statistics, weight and running
  variance U(0.5, 1.5), bias and running mean N(0, 0.1). With the initial values every BN of an eval-mode
  network is the same function (x / sqrt(1 + eps)), so swapped or misplaced norm layers could not show.
"""
import json
import os

import numpy as np
import torch

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')
GOLDEN_FILE = os.path.join(DATA, 'fishnet_golden.npz')
SEEDS = {'99': 99, '150': 150}
INPUT_SEED = 2018
INPUT_SHAPE = (2, 3, 32, 64)  # two images (batch mix-ups show), not square (H/W swaps show)
# Outputs recorded, by our stage name (docs/backbone.md): the detection outputs (body3 and the
# heads), the bridge, the classifier's score feature and the logits.
RECORDED = ('bridge', 'body3', 'head1', 'head2', 'head3', 'score', 'logits')


def official_keys(arch):
    """Official key -> shape, in the authors' ``state_dict()`` order."""
    with open(os.path.join(DATA, 'fishnet_official_keys.json')) as f:
        return {k: tuple(v) for k, v in json.load(f)[f'fishnet{arch}'].items()}


def golden_weights(arch):
    """The official-layout state dict (float64, without ``module.`` and ``num_batches_tracked``)."""
    rng = np.random.RandomState(SEEDS[arch])
    state = {}
    shapes = official_keys(arch)
    for key, shape in shapes.items():
        name = key.rsplit('.', 1)[1]
        if len(shape) == 4:  # conv weight
            value = rng.standard_normal(shape) * np.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))
        elif name == 'bias' and len(shapes[key[:-len('bias')] + 'weight']) == 4:  # conv bias
            fan_in = int(np.prod(shapes[key[:-len('bias')] + 'weight'][1:]))
            value = rng.uniform(-1, 1, shape) / np.sqrt(fan_in)
        elif name in ('weight', 'running_var'):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ('bias', 'running_mean'):
            value = rng.standard_normal(shape) * 0.1
        else:
            raise KeyError(f'no rule draws {key}')
        state[key] = torch.from_numpy(np.asarray(value, dtype=np.float64))
    return state


def golden_input():
    return torch.from_numpy(np.random.RandomState(INPUT_SEED).uniform(-1, 1, INPUT_SHAPE))


def golden_outputs():
    """The authors' recorded arrays (``numpy.lib.npyio.NpzFile``), by ``fishnet<arch>/<name>``."""
    return np.load(GOLDEN_FILE)


def assert_matches_authors(name, ours, arch, golden=None):
    """``ours`` (float64) equals the authors' output ``name`` of FishNet-``arch`` within what the float32
    storage of their float64 values allows (~1e-7 of the largest value; a wiring mistake gives ~1)."""
    golden = torch.from_numpy((golden if golden is not None else golden_outputs())[f'fishnet{arch}/{name}']).double()
    assert ours.shape == golden.shape, name
    worst = ((ours.double() - golden).abs().max() / golden.abs().max()).item()
    assert worst < 1e-5, f"FishNet-{arch} {name} differs from the authors' by {worst:.3g} of its scale"
