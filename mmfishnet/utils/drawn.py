# Copyright (c) mmfishnet contributors. All rights reserved.
"""What a detection picture draws: the boxes the detector is sure of, one box per object.

One home for the rule of ``tools/image_demo.py`` (which draws the pictures) and of
``tools/analysis_tools/drawn_boxes.py`` (which counts what such pictures draw over a test set).
The predictions themselves (the JSON of image_demo, ``tools/test.py --out``, the mAP) keep every box.
"""
import numpy as np

from .errors import UserError

# The lowest score a picture draws, mmdet 3.3.0's: demo/image_demo.py's --pred-score-thr and
# DetInferencer.__call__'s pred_score_thr (mmdet/apis/det_inferencer.py) both default to 0.3.
SCORE_THR = 0.3
# Of the drawn boxes that overlap at box IoU above this, whatever their classes, only the best-scoring one
# is drawn (class-agnostic NMS, mmcv's nms). 0.7 is the IoU at which mmdet's Mask R-CNN base takes
# two RPN proposals for one object (model.test_cfg.rpn.nms.iou_threshold) and the RPN's positive IoU; the
# config's own test NMS stays per class, as COCO mAP wants it. What 0.5-0.9 draw on the toy val set:
# docs/development.md, "The picture's boxes on the val set". 1 draws every box over SCORE_THR.
ONE_BOX_IOU = 0.7


def drawn_mask(bboxes, scores, score_thr: float = SCORE_THR, one_box_iou: float = ONE_BOX_IOU):
    """Which boxes a picture draws: score >= ``score_thr``, then of boxes overlapping at IoU above
    ``one_box_iou`` only the best-scoring, whatever the classes (class-agnostic NMS: a box of another class
    on the same object is still a second box on it).

    Args:
        bboxes: (N, 4) boxes x1, y1, x2, y2 (tensor or array).
        scores: (N, ) scores.
        score_thr (float): the lowest score drawn.
        one_box_iou (float): in (0, 1]; 1 keeps every box over ``score_thr``.

    Returns:
        np.ndarray: (N, ) bool, True for the boxes drawn.
    """
    import torch
    from mmcv.ops import nms
    if not 0 < one_box_iou <= 1:
        raise UserError(f'--one-box-iou must lie in (0, 1], got {one_box_iou} (1 draws every box over the score '
                        'threshold)')
    scores = torch.as_tensor(np.asarray(scores, dtype=np.float32)).reshape(-1)
    bboxes = torch.as_tensor(np.asarray(bboxes, dtype=np.float32)).reshape(-1, 4)
    mask = np.zeros(len(scores), dtype=bool)
    over = torch.nonzero(scores >= score_thr).reshape(-1)
    if len(over):
        _, keep = nms(bboxes[over], scores[over], one_box_iou)
        mask[over[keep].numpy()] = True
    return mask
