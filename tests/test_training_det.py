"""Detection end to end: forward/backward of Faster and Mask R-CNN with FishNet, tools/train.py then
tools/test.py with COCO metrics, resume, and 2-process CPU training through tools/dist_train.sh."""
import os

import mmengine
import pytest
import torch
from mmengine.config import Config

from helpers import ROOT, printed_metrics, run_tool, tiny_det_config


def test_toy_coco_is_valid_coco(coco_data):
    from pycocotools.coco import COCO
    coco = COCO(str(coco_data / 'annotations' / 'instances_train.json'))
    assert len(coco.getImgIds()) == 8 and len(coco.getCatIds()) == 3
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.sum() == ann['area'] > 0
        x, y, w, h = ann['bbox']
        ys, xs = mask.nonzero()
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)


@pytest.mark.parametrize('config', ['configs/faster_rcnn_fishnet99_fpn_1x_coco.py',
                                    'configs/mask_rcnn_fishnet99_fpn_1x_coco.py'])
def test_forward_backward(config):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import DefaultScope, init_default_scope
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.train()
    packed = demo_mm_inputs(2, [[3, 128, 160], [3, 96, 128]], num_items=[3, 2], with_mask='mask' in config)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.head3.trunk[0].conv2.weight.grad is not None
    assert model.backbone.stem[0].conv.weight.grad is None  # frozen_stages=1
    if 'mask' in config:
        assert 'loss_mask' in losses
    assert isinstance(data['data_samples'][0], DetDataSample)


def coco_map(ann_file, preds, iou_type):
    """mAP@[.5:.95] of dumped predictions ('bbox' or 'segm'), by pycocotools itself (COCO's reference
    evaluation, independent of mmdet's CocoMetric)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann_file)
    cat_ids = gt.getCatIds()  # the dataset's label i is the i-th category, as mmdet's CocoDataset maps it
    dets = []
    for pred in preds:
        inst = pred['pred_instances']
        for i, ((x1, y1, x2, y2), score, label) in enumerate(zip(inst['bboxes'].tolist(), inst['scores'].tolist(),
                                                                 inst['labels'].tolist())):
            det = dict(image_id=pred['img_id'], category_id=cat_ids[label], score=score)
            if iou_type == 'bbox':
                det['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            else:
                det['segmentation'] = inst['masks'][i]  # RLE, as DumpDetResults encodes them
            dets.append(det)
    assert dets, 'no predictions to evaluate'
    evaluation = COCOeval(gt, gt.loadRes(dets), iou_type)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats[0]


def test_train_test_and_resume(tmp_path, coco_data):
    """Catches tools/test.py reporting a bbox or mask mAP that is not COCO's evaluation of the model's predictions
    on the val images (wrong split, wrong category mapping, metrics of something else) or not dumping them
    with --out (checked against pycocotools on the dump), a --show-dir that draws nothing, and an automatic
    --resume that does not continue from the last epoch."""
    work = tmp_path / 'work'
    cfg = tiny_det_config(tmp_path, coco_data, epochs=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = (work / 'last_checkpoint').read_text().strip()
    assert ckpt.endswith('epoch_2.pth')

    out = tmp_path / 'preds.pkl'
    metrics = printed_metrics(run_tool('tools/test.py', cfg, ckpt, '--work-dir', str(work), '--show-dir', 'vis',
                                       '--out', str(out)))
    preds = mmengine.load(str(out))
    assert sorted(p['img_id'] for p in preds) == [1, 2, 3, 4]  # the 4 val images' COCO ids
    ann_file = str(coco_data / 'annotations' / 'instances_val.json')
    for iou_type in ('bbox', 'segm'):  # CocoMetric rounds to 3 decimals
        assert metrics[f'coco/{iou_type}_mAP'] == pytest.approx(coco_map(ann_file, preds, iou_type), abs=5e-4)
    drawn = [f for _, _, files in os.walk(work) for f in files if f.endswith('.png')]
    assert len(drawn) == 4  # one picture per val image

    # resume: one more epoch continues at epoch 3 from the epoch-2 checkpoint's iteration
    cfg3 = tiny_det_config(tmp_path, coco_data, epochs=3, name='det3.py')
    proc = run_tool('tools/train.py', cfg3, '--work-dir', str(work), '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 2, iter: 8' in log
    assert 'Epoch(train) [3][' in log and 'Epoch(train) [1][' not in log
    state = torch.load(work / 'epoch_3.pth', map_location='cpu')
    assert state['meta']['epoch'] == 3 and state['meta']['iter'] == 12


def test_num_classes_check_on_a_detection_config(tmp_path, coco_data):
    """Catches NumClassesCheckHook missing from the detection configs or not reaching a detector's nested
    heads: a bbox head for 5 classes on the 3-class toy COCO stops before training, naming the setting
    (the RPN head's single objectness class is not a mismatch: the other detection tests train)."""
    cfg = tiny_det_config(tmp_path, coco_data, extra=(
        "model = dict(backbone=dict(init_cfg=None), roi_head=dict(bbox_head=dict(num_classes=5)))"))
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'work'))
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: model.roi_head.bbox_head.num_classes=5 but the train dataset has 3 classes (circle, square, '
        'triangle); set model.roi_head.bbox_head.num_classes=3')


def test_dist_train_two_processes_on_cpu(tmp_path, coco_data):
    work = tmp_path / 'work'
    cfg = tiny_det_config(tmp_path, coco_data, epochs=1, batch_size=2)
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(work),
                    tool_env=dict(PORT=str(29500 + os.getpid() % 1000)))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    # 8 images, 2 ranks x 2 images: 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in log
    assert (work / 'epoch_1.pth').is_file()
