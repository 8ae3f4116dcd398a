"""tools/analysis_tools/drawn_boxes.py, which counts the boxes a picture draws over a test set (the README
demo table's drawn-box row), and the rule of what a picture draws (mmfishnet.utils.drawn, shared with
tools/image_demo.py). Expected counts are worked out by hand from the boxes below. No training here."""
import importlib.util
import os
import pickle

import numpy as np
import pytest

from helpers import ROOT, run_tool

TOOL = os.path.join(ROOT, 'tools', 'analysis_tools', 'drawn_boxes.py')
CONFIG = os.path.join(ROOT, 'configs', 'toy', 'mask_rcnn_fishnet99_fpn_toy-coco.py')
CIRCLE, SQUARE, TRIANGLE = 0, 1, 2


@pytest.fixture(scope='module')
def drawn_boxes():
    spec = importlib.util.spec_from_file_location('drawn_boxes', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_kind_of_wrong_box(drawn_boxes):
    # Catches: boxes under the threshold counted (the triangle 0.2 on C would be a wrong class), several
    # boxes matched to one object (the second circle would be right), a wrong class taken for a box on
    # nothing, a missed object not counted.
    gt_boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    gt_labels = [CIRCLE, SQUARE, SQUARE]
    boxes = [[20, 20, 30, 30],   # square on B: right
             [0, 0, 10, 10],     # circle on A: right
             [0, 0, 10, 11],     # triangle on A: wrong class
             [0, 1, 10, 10],     # circle on A again: second box
             [60, 60, 70, 70],   # square on nothing
             [40, 40, 50, 50]]   # triangle on C, score 0.2: not drawn; C is missed
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.2]
    labels = [SQUARE, CIRCLE, TRIANGLE, CIRCLE, SQUARE, TRIANGLE]
    counts = drawn_boxes.count_image(gt_boxes, gt_labels, boxes, scores, labels, score_thr=0.3, one_box_iou=1)
    assert counts == dict(right=2, wrong_class=1, second_box=1, on_no_object=1, objects=3, missed=1, all_right=0)
    # By default the pictures draw one box per object: the triangle and the second circle on A overlap the
    # circle 0.8 at IoU 0.91 / 0.9 (> 0.7) and are not drawn. Catches the count applying another rule than
    # the pictures (every box over the threshold, as above).
    counts = drawn_boxes.count_image(gt_boxes, gt_labels, boxes, scores, labels, score_thr=0.3)
    assert counts == dict(right=2, wrong_class=0, second_box=0, on_no_object=1, objects=3, missed=1, all_right=0)


def test_best_score_first_takes_its_best_object(drawn_boxes):
    # COCO's matching (pycocotools' evaluateImg): detections by descending score, each to the unmatched
    # object of its class with the highest IoU. Box 1 (0.9) has IoU 0.6 with P and 0.74 with Q, so it takes Q;
    # box 0 (0.8) overlaps only Q and is a second box; P is missed. Catches matching in the input order (box
    # 0 would take Q, box 1 P: two right) and matching to the first object over the IoU threshold (box 1
    # would take P).
    gt_boxes = [[0, 0, 10, 10], [4, 0, 14, 10]]           # P, Q
    boxes = [[4, 0, 14, 10], [2.5, 0, 12.5, 10]]            # IoU with Q: 1; then with P 0.6, with Q 0.74
    counts = drawn_boxes.count_image(gt_boxes, [SQUARE, SQUARE], boxes, [0.8, 0.9], [SQUARE, SQUARE], one_box_iou=1)
    assert (counts['right'], counts['second_box'], counts['missed']) == (1, 1, 1)


def test_one_box_per_object():
    # The rule of the pictures: score >= 0.3, then of boxes overlapping at IoU above 0.7, whatever their
    # classes, only the best. IoUs by hand: B and A 90/100 = 0.9; E and A 80/100 = 0.8; C and A 50/150 = 0.33.
    # Catches: NMS per class (B, a triangle on the square A, would be drawn: the pile of issue 25), the
    # threshold not applied (D drawn), the lower score keeping its box (A dropped for B), the IoU argument
    # not used (E is drawn only with an IoU above its 0.8) or the rule off by default.
    from mmfishnet.utils.drawn import ONE_BOX_IOU, SCORE_THR, drawn_mask
    boxes = [[0, 0, 10, 10],     # A square 0.9 (the classes only say what the boxes are: the rule ignores them)
             [0, 0, 10, 9],      # B triangle 0.6 on A
             [5, 0, 15, 10],     # C circle 0.8, half over A
             [20, 20, 30, 30],   # D square 0.2: under the threshold
             [0, 0, 10, 8]]      # E square 0.5 on A
    scores = [0.9, 0.6, 0.8, 0.2, 0.5]
    assert (SCORE_THR, ONE_BOX_IOU) == (0.3, 0.7)
    assert drawn_mask(boxes, scores).tolist() == [True, False, True, False, False]
    assert drawn_mask(boxes, scores, one_box_iou=0.85).tolist() == [True, False, True, False, True]
    assert drawn_mask(boxes, scores, one_box_iou=1).tolist() == [True, True, True, False, True]
    assert drawn_mask(boxes, scores, score_thr=0.1, one_box_iou=1).tolist() == [True] * 5
    assert drawn_mask(np.zeros((0, 4)), []).tolist() == []


def test_all_right_and_ignored_instances(drawn_boxes):
    # Catches: an image with every box right not counted as all right; a box on a crowd (ignore_flag)
    # region held against the detector, or the crowd counted as an object to find.
    counts = drawn_boxes.count_image([[0, 0, 10, 10]], [CIRCLE], [[0, 0, 10, 10], [30, 30, 40, 40]], [0.9, 0.8],
                                     [CIRCLE, SQUARE], ignored_boxes=[[30, 30, 40, 40]])
    assert counts == dict(right=1, wrong_class=0, second_box=0, on_no_object=0, objects=1, missed=0, all_right=1)
    total = drawn_boxes.summarize([counts, dict(counts, right=0, on_no_object=1, missed=1, all_right=0)])
    # by hand: 1 right of 2 drawn, 1 of 2 objects missed, 1 of 2 images all right
    assert (total['right_pct'], total['missed_pct'], total['all_right_pct']) == (50.0, 50.0, 50.0)


@pytest.fixture(scope='module')
def toy_val(tmp_path_factory):
    from mmfishnet.datasets import make_toy_coco
    root = tmp_path_factory.mktemp('toy_coco')
    make_toy_coco(str(root), num_train=0, num_val=3)
    return root


def _options(root):
    return ['--cfg-options', f'test_dataloader.dataset.data_root={root}/']


def test_command_on_a_results_file(tmp_path, toy_val):
    # The whole command as the docs run it, on predictions made from the annotations: every object found
    # once (all right), then the first image's first box relabelled (one wrong class, its object missed).
    # Catches: the dataset's boxes read as x, y, w, h (COCO's file format) instead of mmdet's x1 y1 x2 y2,
    # labels taken as COCO category ids (1-based), results matched to images by position instead of img_id.
    import json

    import torch
    ann = json.load(open(toy_val / 'annotations' / 'instances_val.json'))
    results = []
    for image in reversed(ann['images']):  # not in the dataset's order
        objects = [a for a in ann['annotations'] if a['image_id'] == image['id']]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in objects)]
        results.append(dict(img_id=image['id'], pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.full((len(boxes), ), 0.9),
            labels=torch.tensor([a['category_id'] - 1 for a in objects]))))
    num_objects = len(ann['annotations'])
    good = tmp_path / 'good.pkl'
    pickle.dump(results, open(good, 'wb'))
    proc = run_tool(TOOL, CONFIG, str(good), '--out', str(tmp_path / 'counts' / 'good.json'), *_options(toy_val))
    assert proc.returncode == 0, proc.stderr
    assert f'{num_objects} boxes drawn for {num_objects} objects in 3 images' in proc.stdout
    assert f'right {num_objects} (100.0 %)' in proc.stdout and 'images all right 3 (100.0 %)' in proc.stdout
    written = json.load(open(tmp_path / 'counts' / 'good.json'))  # what the demo keeps
    assert (written['right'], written['drawn'], written['all_right_pct'], written['score_thr'],
            written['one_box_iou']) == (num_objects, num_objects, 100.0, 0.3, 0.7)

    first = results[-1]['pred_instances']
    first['labels'][0] = (first['labels'][0] + 1) % 3
    bad = tmp_path / 'bad.pkl'
    pickle.dump(results, open(bad, 'wb'))
    proc = run_tool(TOOL, CONFIG, str(bad), *_options(toy_val))
    assert proc.returncode == 0, proc.stderr
    assert f'right {num_objects - 1} ' in proc.stdout and 'wrong class 1,' in proc.stdout
    assert 'objects missed 1 ' in proc.stdout and 'images all right 2 ' in proc.stdout


def test_results_of_another_test_set_are_refused(tmp_path, toy_val):
    # Catches counting a results file against the wrong annotations (the default data_root's 1000 images,
    # or a val subset): the ids would not line up and the figures would be meaningless.
    import torch
    empty = dict(bboxes=torch.zeros((0, 4)), scores=torch.zeros(0), labels=torch.zeros(0, dtype=torch.long))
    for ids, message in (([1, 2, 999], 'does not'), ([1, 2], 'cover 2 of the test set\'s 3 images')):
        path = tmp_path / f'r{len(ids)}.pkl'
        pickle.dump([dict(img_id=i, pred_instances=empty) for i in ids], open(path, 'wb'))
        proc = run_tool(TOOL, CONFIG, str(path), *_options(toy_val))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    # and an IoU no box can have: one line naming the range and the value that draws every box
    proc = run_tool(TOOL, CONFIG, str(path), '--one-box-iou', '0', *_options(toy_val))
    assert proc.returncode == 2 and '--one-box-iou must lie in (0, 1], got 0.0 (1 draws every box' in \
        proc.stderr.strip().splitlines()[-1], proc.stderr


def test_crowd_instances_are_not_objects_to_find(drawn_boxes):
    # mmdet's CocoDataset gives a COCO crowd (iscrowd=1) ignore_flag=1. Catches a crowd taken as an object:
    # it would count as missed in every image that has one.
    class Dataset:
        def __len__(self):
            return 1

        def get_data_info(self, idx):
            return dict(img_id=7, instances=[dict(bbox=[0, 0, 10, 10], bbox_label=CIRCLE, ignore_flag=0),
                                             dict(bbox=[20, 20, 40, 40], bbox_label=SQUARE, ignore_flag=1)])

    boxes, labels, ignored = drawn_boxes.ground_truth(Dataset())[7]
    assert boxes.tolist() == [[0, 0, 10, 10]] and labels.tolist() == [CIRCLE] and ignored == [[20, 20, 40, 40]]
