"""Regenerate tests/data/fishnet_golden.npz with the authors' code, and check the official key list.

    git clone https://github.com/kevin-ssy/FishNet /tmp/authors/FishNet
    git -C /tmp/authors/FishNet checkout b968f0244827e11201471edd8a979bd85027b991
    python tests/data/make_fishnet_golden.py /tmp/authors/FishNet

Needs only torch and numpy (not mmfishnet). The authors' code is imported from the given checkout and
never copied into this repository. What it does (tests/data/README.md says why):

1. builds the authors' fishnet99/150/201 (``models/net_factory.py``) and checks that their
   ``state_dict()`` keys, order and shapes are those of ``fishnet_official_keys.json``
   (``--write-keys`` rewrites the three original layouts from them instead);
2. records the authors' own initialisation: ``torch.manual_seed(0); fishnet99()``, then mean and standard
   deviation of every tensor, in key order;
3. for FishNet-99 and 150, loads the seeded official-layout weights of ``tests/golden.py`` into the
   authors' model (strict), runs it in float64, eval mode, on the seeded input, and records the logits
   and, through forward hooks, the stage outputs named in ``tests/golden.RECORDED`` (float32).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import golden  # noqa: E402  tests/golden.py

# Where each recorded stage output appears in the authors' model: the input of the module that consumes
# it next (their stage outputs are values of a closure, not module outputs), or a module's output.
# fish.fish[i] holds stage i's modules: [trunk, transfer, sampling] for tail/body/head stages, the
# bridge's [BN-ReLU-conv-BN-ReLU, conv, trunk, attention], head3's [..., score conv, pool + fc].
AUTHORS_HOOKS = {
    'bridge': ('input', 'fish.fish.4.0'),   # body1's trunk reads the bridge output
    'body3': ('input', 'fish.fish.7.0'),    # head1's trunk reads body3's output
    'head1': ('input', 'fish.fish.8.0'),
    'head2': ('input', 'fish.fish.9.0'),
    'head3': ('input', 'fish.fish.9.3'),    # the score conv reads head3's output
    'score': ('output', 'fish.fish.9.3'),
}


def authors_models(repo):
    sys.path.insert(0, repo)
    from models import net_factory
    return {arch: getattr(net_factory, f'fishnet{arch}') for arch in ('99', '150', '201')}


def check_keys(factories, write):
    path = os.path.join(HERE, 'fishnet_official_keys.json')
    with open(path) as f:
        stored = json.load(f)
    for arch, factory in factories.items():
        keys = {k: list(v.shape) for k, v in factory().state_dict().items() if not k.endswith('num_batches_tracked')}
        if write:
            stored[f'fishnet{arch}'] = keys
        elif list(stored[f'fishnet{arch}'].items()) != list(keys.items()):
            raise SystemExit(f'fishnet_official_keys.json differs from the authors\' fishnet{arch}')
    if write:
        with open(path, 'w') as f:
            json.dump(stored, f, indent=0)
            f.write('\n')


def record_outputs(model, x):
    modules = dict(model.named_modules())
    found = {}
    handles = []
    for name, (where, module) in AUTHORS_HOOKS.items():
        if where == 'input':
            hook = (lambda n: lambda m, inputs: found.__setitem__(n, inputs[0].clone()))(name)
            handles.append(modules[module].register_forward_pre_hook(hook))
        else:
            hook = (lambda n: lambda m, inputs, out: found.__setitem__(n, out.clone()))(name)
            handles.append(modules[module].register_forward_hook(hook))
    with torch.no_grad():
        found['logits'] = model(x)
    for handle in handles:
        handle.remove()
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('authors_repo', help='a checkout of github.com/kevin-ssy/FishNet')
    parser.add_argument('--write-keys', action='store_true', help='rewrite the original layouts of '
                        'fishnet_official_keys.json from the authors\' model instead of checking them')
    args = parser.parse_args()
    factories = authors_models(args.authors_repo)
    check_keys(factories, args.write_keys)

    arrays = {}
    torch.manual_seed(0)
    initial = factories['99']().state_dict()
    keys = list(golden.official_keys('99'))
    arrays['init99_mean'] = np.array([initial[k].double().mean().item() for k in keys])
    arrays['init99_std'] = np.array([initial[k].double().std().item() for k in keys])

    x = golden.golden_input()
    arrays['input'] = x.numpy().astype(np.float32)  # for inspection; the tests regenerate it
    for arch in golden.SEEDS:
        model = factories[arch]().double().eval()
        weights = golden.golden_weights(arch)
        missing, unexpected = model.load_state_dict(weights, strict=False)
        assert not unexpected and all(k.endswith('num_batches_tracked') for k in missing), (missing, unexpected)
        outputs = record_outputs(model, x)
        for name in golden.RECORDED:
            arrays[f'fishnet{arch}/{name}'] = outputs[name].numpy().astype(np.float32)
    out = os.path.join(HERE, 'fishnet_golden.npz')
    np.savez_compressed(out, **arrays)
    print(f'wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB) with torch {torch.__version__}, '
          f'numpy {np.__version__}:')
    for name, value in arrays.items():
        print(f'  {name} {value.shape} max|x|={np.abs(value).max():.4g}')


if __name__ == '__main__':
    main()
