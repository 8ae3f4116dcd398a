# Copyright (c) mmfishnet contributors. All rights reserved.
"""Evaluate a checkpoint with the config's test dataloader and metric (COCO mAP for detection configs,
top-1/top-5 for classification configs, mIoU and per-class IoU for segmentation configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--cfg-options k=v ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [same options]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402


def parse_args(argv=None):
    from mmfishnet.utils.cli import add_runner_args, parse_runner_args
    parser = argparse.ArgumentParser(description='Test (evaluate) a FishNet model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_runner_args(parser, work_dir_help='where to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument('--show-dir', help='draw predictions of the test images into this directory '
                        "(relative to the work dir's timestamp folder; for mmseg configs to the work dir, "
                        'pictures in its vis_data/vis_image/)')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from train import load_config
    cfg = load_config(args)
    from mmfishnet.utils.config_checks import check_checkpoint
    weights = check_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    cfg.load_from = args.checkpoint
    # the backbone's own init_cfg (ImageNet weights) is irrelevant when a full checkpoint is loaded
    if cfg.get('model', {}).get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None

    if args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise UserError('--show-dir needs a visualization hook in default_hooks')
        if cfg.get('default_scope') == 'mmpretrain':
            hooks.visualization.update(enable=True, out_dir=args.show_dir)
        elif cfg.get('default_scope') == 'mmseg':  # mmseg's hook draws through the visualizer's backends
            hooks.visualization.update(draw=True)
            cfg.visualizer.save_dir = osp.join(cfg.work_dir, args.show_dir)
        else:
            hooks.visualization.update(draw=True, test_out_dir=args.show_dir)
    if args.out:
        dump = dict(type='DumpResults', out_file_path=args.out)
        if cfg.get('default_scope') == 'mmdet':
            dump['type'] = 'DumpDetResults'
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]) + [dump]

    from mmfishnet.utils.config_checks import check_dataset_paths
    check_dataset_paths(cfg, splits=('test', ))

    from mmfishnet.utils.dist import setup_cpu_distributed, teardown_distributed
    setup_cpu_distributed(cfg, args.launcher)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if weights is not None:
        from mmfishnet.utils.config_models import check_fits
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        check_fits(model, weights, args.checkpoint)
        del weights
    metrics = runner.test()
    from mmengine.dist import is_main_process
    if is_main_process():  # every rank holds the same metrics
        print(metrics, flush=True)
    teardown_distributed()


if __name__ == '__main__':
    sys.exit(run_cli(main))
