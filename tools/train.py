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

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402
from mmfishnet.utils.runner_setup import build_runner, load_config  # noqa: E402


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
    """--amp, --auto-scale-lr and --resume, applied to the config."""
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
    if args.resume is None:  # a restarted worker group or a requeued job goes on from its own checkpoint
        from mmfishnet.utils.dist import checkpoint_of_this_launch
        found = checkpoint_of_this_launch(cfg.work_dir)
        if found is not None:
            print(f'this launch was restarted: resuming from {found}')
            cfg.resume, cfg.load_from = True, found
    elif args.resume == 'auto':
        from mmfishnet.utils.checkpoint import find_resumable_checkpoint
        found = find_resumable_checkpoint(cfg.work_dir)
        if found is None:
            print(f'--resume: no complete checkpoint in {cfg.work_dir}; training starts from the beginning')
        cfg.resume, cfg.load_from = found is not None, found
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume


def main(argv=None):
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
    runner.train()
    from mmfishnet.utils.dist import teardown_distributed
    teardown_distributed()


if __name__ == '__main__':
    sys.exit(run_cli(main))
