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
from mmfishnet.utils.runner_setup import build_runner, enable_visualization, load_config  # noqa: E402


def parse_args(argv=None):
    from mmfishnet.utils.cli import add_runner_args, parse_runner_args
    parser = argparse.ArgumentParser(description='Test (evaluate) a FishNet model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_runner_args(parser, work_dir_help='where to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file')
    parser.add_argument('--show-dir', help='draw the predictions on every test image into this directory, '
                        "relative to the work dir's timestamp folder for mmdet configs, to the work dir for "
                        'mmpretrain and mmseg configs (mmseg: pictures in its vis_data/vis_image/)')
    return parse_runner_args(parser, argv)


def main(argv=None):
    from mmfishnet.utils.config_checks import check_checkpoint, check_dataset_paths
    from mmfishnet.utils.config_models import check_fits, skip_backbone_pretrained
    from mmfishnet.utils.dist import teardown_distributed
    args = parse_args(argv)
    cfg = load_config(args)
    weights = check_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
    cfg.load_from = args.checkpoint
    skip_backbone_pretrained(cfg.model)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    if args.out:
        dump = dict(type='DumpDetResults' if cfg.get('default_scope') == 'mmdet' else 'DumpResults',
                    out_file_path=args.out)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]) + [dump]
    check_dataset_paths(cfg, splits=('test', ))

    runner = build_runner(cfg)
    check_fits(runner.model.module if hasattr(runner.model, 'module') else runner.model, weights, args.checkpoint)
    del weights
    metrics = runner.test()
    from mmengine.dist import is_main_process
    if is_main_process():  # every rank holds the same metrics
        print(metrics, flush=True)
    teardown_distributed()


if __name__ == '__main__':
    sys.exit(run_cli(main))
