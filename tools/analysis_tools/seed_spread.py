# Copyright (c) mmfishnet contributors. All rights reserved.
"""Train one config with several seeds (and memory formats) and print each run's final metrics with their
mean and spread: how far a demo figure moves when only the seed or the float rounding changes.

    python tools/analysis_tools/seed_spread.py configs/toy/fishnet99_1xb16_toy-cls.py --seeds 0 1 2 --nchw
    python tools/analysis_tools/seed_spread.py configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py --seeds 0 1 2 \\
        --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/toy_cls/epoch_20.pth

Each run is ``tools/train.py CONFIG --cfg-options randomness.seed=N ...`` in its own process and work dir
(``WORK_DIR/<variant>_seed<N>``); ``--nchw`` adds every seed again with
``model.backbone.channels_last=False``. The metrics are those of the last validation (the end of
training), read from mmengine's ``vis_data/scalars.json``. A finished run is not trained again, so an
interrupted measurement continues where it stopped. The summary is also written to
``WORK_DIR/summary.json``.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402

VARIANTS = {'default': [], 'nchw': ['model.backbone.channels_last=False']}
# The figures the demo reports, per the config's default_scope.
DEFAULT_METRICS = {'mmpretrain': ['accuracy/top1'], 'mmdet': ['coco/bbox_mAP', 'coco/segm_mAP'], 'mmseg': ['mIoU']}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='training config')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2], help='randomness.seed values')
    parser.add_argument('--nchw', action='store_true',
                        help='also train every seed with model.backbone.channels_last=False')
    parser.add_argument('--metrics', nargs='+',
                        help='keys of the validation results (default: accuracy/top1 for mmpretrain '
                        'configs, coco/bbox_mAP and coco/segm_mAP for mmdet ones, mIoU for mmseg ones)')
    parser.add_argument('--work-dir', help='parent of the runs\' work dirs (default: work_dirs/spread_<config>)')
    parser.add_argument('--jobs', type=int, default=1, help='runs trained at the same time')
    parser.add_argument('--threads', type=int,
                        help='torch threads per run (OMP_NUM_THREADS; default: torch\'s own choice)')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every run, e.g. k=v')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        raise UserError(f'config file {args.config} does not exist')
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        raise UserError('--jobs and --threads must be at least 1')
    return args


def last_metrics(work_dir: str, keys):
    """The last validation's values of ``keys`` in the newest run under ``work_dir``, or None."""
    runs = sorted(d for d in os.listdir(work_dir) if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))
    if not runs:
        return None
    found = None
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            record = json.loads(line)
            if all(k in record for k in keys):
                found = {k: record[k] for k in keys}
    return found


def train(args, variant: str, seed: int, work_dir: str, keys):
    done = osp.join(work_dir, 'done.json')
    if osp.isfile(done):
        with open(done) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    env = dict(os.environ, PYTHONHASHSEED='0')
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    options = [f'randomness.seed={seed}', *VARIANTS[variant], *args.cfg_options]
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config, '--work-dir', work_dir,
           '--cfg-options', *options]
    print(f'[{variant} seed {seed}] {" ".join(cmd)}', flush=True)
    with open(osp.join(work_dir, 'train.log'), 'w') as log:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    metrics = last_metrics(work_dir, keys)
    if rc != 0 or metrics is None:
        raise RuntimeError(f'{variant} seed {seed} failed (exit {rc}); see {work_dir}/train.log')
    with open(done, 'w') as f:
        json.dump(metrics, f)
    print(f'[{variant} seed {seed}] {metrics}', flush=True)
    return metrics


def spread(values):
    """Mean, sample standard deviation and range (max - min) of ``values``."""
    return dict(mean=statistics.mean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                min=min(values), max=max(values), range=max(values) - min(values))


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    keys = args.metrics or DEFAULT_METRICS.get(cfg.get('default_scope'))
    if not keys:
        raise UserError(f'cannot tell which metrics {args.config} reports; pass --metrics')
    name = osp.splitext(osp.basename(args.config))[0]
    work_root = args.work_dir or osp.join('work_dirs', f'spread_{name}')
    variants = ['default', 'nchw'] if args.nchw else ['default']
    runs = [(v, s) for v in variants for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: train(args, r[0], r[1], osp.join(work_root, f'{r[0]}_seed{r[1]}'), keys),
                                runs))

    print(f'\n{args.config}  {" ".join(args.cfg_options)}')
    print('| variant | seed | ' + ' | '.join(keys) + ' |')
    print('|---|---:|' + '---:|' * len(keys))
    for (variant, seed), metrics in zip(runs, results):
        print(f'| {variant} | {seed} | ' + ' | '.join(f'{metrics[k]:.3f}' for k in keys) + ' |')
    groups = {v: [m for (rv, _), m in zip(runs, results) if rv == v] for v in variants}
    if len(variants) > 1:
        groups['all'] = results
    summary = {}
    for group, members in groups.items():
        summary[group] = {k: spread([m[k] for m in members]) for k in keys}
        print(f'| {group}: mean ± std (range) over {len(members)} | | ' + ' | '.join(
            '{mean:.3f} ± {std:.3f} ({min:.3f}-{max:.3f})'.format(**summary[group][k]) for k in keys) + ' |')
    with open(osp.join(work_root, 'summary.json'), 'w') as f:
        json.dump(dict(config=args.config, cfg_options=args.cfg_options,
                       runs=[dict(variant=v, seed=s, **m) for (v, s), m in zip(runs, results)],
                       summary=summary), f, indent=1)


if __name__ == '__main__':
    sys.exit(run_cli(main))
