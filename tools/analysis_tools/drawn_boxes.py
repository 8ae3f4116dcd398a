# Copyright (c) mmfishnet contributors. All rights reserved.
"""Count the boxes a picture draws (as ``tools/image_demo.py`` draws them: score >= the threshold, one box
per object) over a whole test set: how many are right, what the wrong ones are, and how many pictures are
all right. COCO mAP averages over every score; this says what a user sees at one threshold.

    python tools/test.py CONFIG CHECKPOINT --out results.pkl
    python tools/analysis_tools/drawn_boxes.py CONFIG results.pkl [--score-thr 0.3] [--one-box-iou 0.7] \
        [--tp-iou-thr 0.5] [--out counts.json]

The arguments follow mmdet's ``tools/analysis_tools/confusion_matrix.py`` (the config's test dataset gives
the ground truth, the pickle the predictions). The boxes drawn are those of ``mmfishnet.utils.drawn``:
score >= ``--score-thr``, and of boxes overlapping at IoU above ``--one-box-iou``, whatever their classes,
only the best (``--one-box-iou 1``: every box over the threshold). Per image, the drawn boxes are taken best
score first; each is **right** when it matches an object of its class not matched yet at box IoU >=
``--tp-iou-thr``; a box left over is a **wrong class** when it overlaps an object of another class at that
IoU, else a **second box** when it overlaps an object of its class (already matched), else **on no object**
(background, or a box over two objects). Instances with ``ignore_flag`` (COCO crowds) are neither objects
to find nor held against a box on them. An image is **all right** when every drawn box is right and no
object is missed.
"""
import argparse
import json
import os
import os.path as osp
import sys

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.drawn import ONE_BOX_IOU, SCORE_THR, drawn_mask  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402

KINDS = ('right', 'wrong_class', 'second_box', 'on_no_object')


def count_image(gt_boxes, gt_labels, boxes, scores, labels, score_thr=SCORE_THR, iou_thr=0.5,
                ignored_boxes=None, one_box_iou=ONE_BOX_IOU) -> dict:
    """The counts of one image (see the module's docstring); boxes x1 y1 x2 y2, IoU by mmdet's
    ``bbox_overlaps`` (mmdet 3.x's pixel convention, no +1)."""
    from mmdet.evaluation import bbox_overlaps
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    keep = drawn_mask(boxes, scores, score_thr, one_box_iou)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[keep]
    labels = np.asarray(labels).reshape(-1)[keep]
    order = np.argsort(-np.asarray(scores)[keep], kind='stable')
    iou = bbox_overlaps(boxes, gt_boxes)
    on_ignored = bbox_overlaps(boxes, np.asarray(ignored_boxes if ignored_boxes is not None else [],
                                                 dtype=np.float32).reshape(-1, 4))
    matched = np.zeros(len(gt_boxes), dtype=bool)
    counts = dict.fromkeys(KINDS, 0)
    for k in order:
        same_class = gt_labels == labels[k]
        free = np.where(same_class & ~matched & (iou[k] >= iou_thr))[0]
        if len(free):
            matched[free[np.argmax(iou[k, free])]] = True
            counts['right'] += 1
        elif np.any(~same_class & (iou[k] >= iou_thr)):
            counts['wrong_class'] += 1
        elif np.any(same_class & (iou[k] >= iou_thr)):
            counts['second_box'] += 1
        elif on_ignored.shape[1] and on_ignored[k].max() >= iou_thr:
            continue
        else:
            counts['on_no_object'] += 1
    counts['objects'] = len(gt_boxes)
    counts['missed'] = int((~matched).sum())
    counts['all_right'] = int(counts['missed'] == 0 and sum(counts[k] for k in KINDS[1:]) == 0)
    return counts


def summarize(per_image) -> dict:
    """Totals over images, with the percentages the docs quote."""
    total = {key: sum(c[key] for c in per_image) for key in (*KINDS, 'objects', 'missed', 'all_right')}
    drawn = sum(total[k] for k in KINDS)
    total.update(images=len(per_image), drawn=drawn,
                 right_pct=100.0 * total['right'] / drawn if drawn else float('nan'),
                 missed_pct=100.0 * total['missed'] / total['objects'] if total['objects'] else float('nan'),
                 all_right_pct=100.0 * total['all_right'] / len(per_image) if per_image else float('nan'))
    return total


def ground_truth(dataset):
    """{img_id: (boxes, labels, ignored boxes)} from an mmdet dataset's annotations (no pipeline)."""
    truth = {}
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        objects = [i for i in info['instances'] if not i.get('ignore_flag', 0)]
        ignored = [i['bbox'] for i in info['instances'] if i.get('ignore_flag', 0)]
        truth[info['img_id']] = (np.array([i['bbox'] for i in objects], dtype=np.float32).reshape(-1, 4),
                                 np.array([i['bbox_label'] for i in objects], dtype=np.int64), ignored)
    return truth


def count_results(truth: dict, results, score_thr=SCORE_THR, iou_thr=0.5, one_box_iou=ONE_BOX_IOU) -> dict:
    """Counts of ``results`` (``tools/test.py --out``'s list of dicts) against ``truth``
    (:func:`ground_truth`)."""
    seen = set()
    per_image = []
    for result in results:
        img_id = result.get('img_id')
        if img_id not in truth:
            raise UserError(f'the results hold image id {img_id!r}, which the config\'s test set does not: '
                            'pass the config (or --cfg-options) the results were made with')
        if img_id in seen:
            raise UserError(f'the results hold image id {img_id!r} twice: one results file per test run')
        seen.add(img_id)
        pred = result['pred_instances']
        gt_boxes, gt_labels, ignored = truth[img_id]
        per_image.append(count_image(gt_boxes, gt_labels, _numpy(pred['bboxes']), _numpy(pred['scores']),
                                     _numpy(pred['labels']), score_thr, iou_thr, ignored, one_box_iou))
    if len(seen) != len(truth):
        raise UserError(f'the results cover {len(seen)} of the test set\'s {len(truth)} images: count the '
                        'results of a whole test run (tools/test.py CONFIG CHECKPOINT --out FILE.pkl)')
    return summarize(per_image)


def _numpy(x):
    return x.numpy() if hasattr(x, 'numpy') else np.asarray(x)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the test config the results were made with')
    parser.add_argument('prediction_path', help='tools/test.py --out results (.pkl)')
    parser.add_argument('--score-thr', type=float, default=SCORE_THR,
                        help=f'the lowest score drawn (default: {SCORE_THR}, tools/image_demo.py\'s)')
    parser.add_argument('--one-box-iou', type=float, default=ONE_BOX_IOU,
                        help=f'of drawn boxes overlapping at IoU above this, whatever their classes, only the best '
                        f'is counted (default: {ONE_BOX_IOU}, tools/image_demo.py\'s; 1: every box over the threshold)')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5, help='box IoU of a match (default: 0.5)')
    parser.add_argument('--out', help='also write the counts and percentages to this JSON file')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    args = parser.parse_args(argv)
    if not osp.isfile(args.prediction_path):
        raise UserError(f'results file {args.prediction_path} does not exist (tools/test.py CONFIG CHECKPOINT '
                        '--out FILE.pkl writes it)')
    if not 0 < args.tp_iou_thr <= 1:
        raise UserError(f'--tp-iou-thr must lie in (0, 1], got {args.tp_iou_thr}')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.fileio import load
    from mmengine.registry import init_default_scope

    from mmfishnet.utils.config_models import read_config
    cfg = read_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import DATASETS
    results = load(args.prediction_path)
    if not isinstance(results, list) or not all(isinstance(r, dict) and 'pred_instances' in r for r in results):
        raise UserError(f'{args.prediction_path} is not a detector\'s tools/test.py --out results '
                        '(a list of dicts with pred_instances)')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    total = count_results(ground_truth(dataset), results, args.score_thr, args.tp_iou_thr,
                          args.one_box_iou)
    print(f'score >= {args.score_thr}, one box per object at IoU > {args.one_box_iou}, match at IoU >= '
          f'{args.tp_iou_thr}: {total["drawn"]} boxes drawn for {total["objects"]} objects in {total["images"]} images')
    print(f'  right {total["right"]} ({total["right_pct"]:.1f} %), wrong class {total["wrong_class"]}, '
          f'second box {total["second_box"]}, on no object {total["on_no_object"]}')
    print(f'  objects missed {total["missed"]} ({total["missed_pct"]:.1f} %); images all right '
          f'{total["all_right"]} ({total["all_right_pct"]:.1f} %)')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, results=args.prediction_path, score_thr=args.score_thr,
                           one_box_iou=args.one_box_iou, tp_iou_thr=args.tp_iou_thr, **total), f, indent=1)
    return total


if __name__ == '__main__':
    sys.exit(run_cli(main))
