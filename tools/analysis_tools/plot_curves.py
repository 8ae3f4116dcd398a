# Copyright (c) mmfishnet contributors. All rights reserved.
"""Training curves as PNG pictures from a run's own logged scalars.

    python tools/analysis_tools/plot_curves.py WORK_DIR_OR_RUN_DIR [--out-dir DIR]

mmengine's ``LocalVisBackend`` writes every logged scalar (loss terms, lr, validation metrics) to
``<work_dir>/<timestamp>/vis_data/scalars.json``. This reads the newest such file under the given folder with
mmpretrain's ``load_json_log`` and draws with the curve functions of mmpretrain's ``analyze_logs.py``
(installed with mmpretrain under ``.mim/tools``): ``loss.png`` (the total and every ``loss*`` term of the
training iterations) and one ``<metric>.png`` per validation metric (``accuracy_top1.png``,
``coco_bbox_mAP.png`` ...), next to the logs in ``<timestamp>/curves/`` unless ``--out-dir`` says otherwise.
Epoch-based runs are drawn over epochs (fractions of an epoch for the iterations), iteration-based runs
over iterations.
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402


def find_scalars(path: str) -> str:
    """The newest ``vis_data/scalars.json`` of a training run at or under ``path`` (a work dir, one run's
    folder or the file itself); runs of tools/test.py in the same work dir log no training and are skipped."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise UserError(f'{path} does not exist')
    found = glob.glob(osp.join(path, 'vis_data', 'scalars.json')) + glob.glob(
        osp.join(path, '*', 'vis_data', 'scalars.json'))
    for scalars in sorted(found, key=osp.getmtime, reverse=True):
        with open(scalars) as f:
            if any('"lr"' in line for line in f):
                return scalars
    raise UserError(f'no vis_data/scalars.json of a training run under {path}: is it the work dir of '
                    "tools/train.py (with mmengine's LocalVisBackend, the default)?")


def read_curves(scalars_json: str) -> dict:
    """``dict(train=[...], val=[...])`` of the logged scalars (mmpretrain's parser), with the names of the
    loss terms and of the validation metrics found."""
    from mmpretrain.utils import load_json_log
    log = load_json_log(scalars_json)
    if not log['train']:
        raise UserError(f'{scalars_json} holds no training iterations yet')
    loss_keys = sorted({k for entry in log['train'] for k in entry if k.startswith('loss')},
                       key=lambda k: (k != 'loss', k))
    metric_keys = sorted({k for entry in log['val'] for k in entry if k not in ('step', 'time', 'data_time')})
    return dict(log, loss_keys=loss_keys, metric_keys=metric_keys)


def _mmpretrain_plotter():
    """``analyze_logs`` of mmpretrain's own tools, as the package installs them."""
    import mmpretrain
    path = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'analysis_tools', 'analyze_logs.py')
    if not osp.isfile(path):
        raise UserError(f'{path} is missing: reinstall mmpretrain (pip install mmpretrain==1.2.0)')
    spec = importlib.util.spec_from_file_location('mmpretrain_analyze_logs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plot_curves(path: str, out_dir: str = None) -> list:
    """Write the PNGs for the run at ``path``; returns their paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    scalars = find_scalars(path)
    curves = read_curves(scalars)
    run_dir = osp.dirname(osp.dirname(scalars))
    out_dir = out_dir or osp.join(run_dir, 'curves')
    os.makedirs(out_dir, exist_ok=True)
    plotter = _mmpretrain_plotter()
    by_epoch = 'epoch' in curves['train'][0]
    run = osp.basename(run_dir)
    plots = [('loss', curves['loss_keys'], 'training loss', curves['train'], plotter.plot_phase_train)]
    plots += [(key.replace('/', '_'), [key], f'validation {key}', curves['val'], plotter.plot_phase_val)
              for key in curves['metric_keys']]
    written = []
    for name, keys, title, entries, plot_phase in plots:
        plt.figure(figsize=(8, 5))
        for key in keys:
            plot_phase(key, [e for e in entries if key in e], key)
        if plot_phase is plotter.plot_phase_val:  # mmpretrain labels these 'Steps': epochs or iterations
            plt.xlabel('Epochs' if by_epoch else 'Iters')
        plt.title(f'{title} ({run})')
        plt.legend()
        out = osp.join(out_dir, f'{name}.png')
        plt.savefig(out)
        plt.close('all')
        written.append(out)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('path', help='a work dir, one run folder (<work_dir>/<timestamp>) or a scalars.json')
    parser.add_argument('--out-dir', help='where to write the PNGs (default: <run>/curves/)')
    args = parser.parse_args(argv)
    for out in plot_curves(args.path, args.out_dir):
        print(out)


if __name__ == '__main__':
    sys.exit(run_cli(main))
