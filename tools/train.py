# Copyright (c) mmfishnet contributors. All rights reserved.
"""Train a detector (mmdet configs), a classifier (mmpretrain configs) or a segmentor (mmseg configs)
with FishNet.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NUM_PROCESSES [same options]

The config's ``default_scope`` (mmdet, mmpretrain or mmseg) decides which library's registries build it.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _leaf(name: str):
    """``mmfishnet/utils/<name>.py``, a leaf of the import graph, imported without the package: importing
    ``mmfishnet`` loads torch and the OpenMMLab libraries, seconds during which a stop signal would kill the
    process (Slurm may send its warning that early)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'mmfishnet.utils.{name}',
                                                  osp.join(ROOT, 'mmfishnet', 'utils', f'{name}.py'))
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == '__main__':  # the stop signals' handlers first (mmfishnet/utils/stop_signals.py)
    _leaf('errors')
    stop_signals = _leaf('stop_signals')
    stop_signals.install()

sys.path.insert(0, ROOT)


def parse_args(argv=None):
    from mmfishnet.utils.cli import add_runner_args, parse_runner_args
    parser = argparse.ArgumentParser(description='Train a FishNet model')
    parser.add_argument('config', help='train config file path')
    add_runner_args(parser, work_dir_help='where to save logs and checkpoints')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the real total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or without a value from the newest complete checkpoint in '
                        'work_dir (without it, a restarted worker group or a requeued Slurm job resumes from the '
                        'newest checkpoint it wrote itself)')
    return parse_runner_args(parser, argv)


def apply_training_options(cfg, args) -> None:
    """--amp, --auto-scale-lr and --resume, applied to the config (the automatic resume of a restarted
    launch is decided once the process group is up: :func:`mmfishnet.utils.runner_setup.resume_this_launch`)."""
    from mmfishnet.utils.errors import UserError
    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP is already enabled in the config')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise UserError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        from mmfishnet.utils.checkpoint import find_resumable_checkpoint
        found = find_resumable_checkpoint(cfg.work_dir)
        if found is None:
            print(f'--resume: no complete checkpoint in {cfg.work_dir}; training starts from the beginning')
        cfg.resume, cfg.load_from = found is not None, found
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume


def main(argv=None):
    from mmfishnet.utils.runner_setup import build_runner, load_config, resume_this_launch
    args = parse_args(argv)
    cfg = load_config(args)
    apply_training_options(cfg, args)
    from mmfishnet.utils.config_checks import check_checkpoint, check_dataset_paths, check_pretrained_paths
    check_dataset_paths(cfg, splits=('train', 'val'))
    if not cfg.get('resume'):
        check_pretrained_paths(cfg)
    if cfg.get('load_from'):
        check_checkpoint(cfg.load_from, trust=args.trust_checkpoint)

    runner = build_runner(cfg)
    from mmfishnet.engine import LatestCheckpointHook
    if not any(isinstance(hook, LatestCheckpointHook) for hook in runner.hooks):
        from mmfishnet.utils import stop_signals
        stop_signals.release()  # nothing would save on a stop signal: it kills the run, as before
    if args.resume is None:
        resume_this_launch(runner, trust=args.trust_checkpoint)
    runner.train()
    from mmfishnet.utils.dist import teardown_distributed
    teardown_distributed()


def _run_cli() -> int:
    from mmfishnet.utils.cli import run_cli
    return run_cli(main)


if __name__ == '__main__':
    sys.exit(stop_signals.exit_code(_run_cli))
