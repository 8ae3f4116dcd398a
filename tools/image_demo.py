# Copyright (c) mmfishnet contributors. All rights reserved.
"""Run a FishNet model on an image (or a folder of images) with the libraries' own inferencers, and
write each picture with its predictions drawn plus a JSON of the predictions.

    python tools/image_demo.py IMAGE_OR_FOLDER CONFIG [CHECKPOINT] --out-dir DIR [--score-thr 0.3] \
        [--one-box-iou 0.7]

The config's ``default_scope`` picks the inferencer: mmdet's ``DetInferencer`` (boxes, masks), mmpretrain's
``ImageClassificationInferencer`` (class and scores) or mmseg's ``MMSegInferencer`` (class map). Output:

    DIR/vis/<image>.png      the picture with the predictions drawn (the inferencer's visualizer)
    DIR/preds/<image>.json   the predictions (detection: labels, scores, boxes, masks as RLE;
                             classification: label, class, score, all scores; segmentation: pixels per class
                             and the class map as DIR/pred/<n>_pred.png)

Without CHECKPOINT the model keeps its initialisation (random predictions: a check of the pipeline only).
"""
import argparse
import json
import os
import os.path as osp
import sys
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.drawn import ONE_BOX_IOU, SCORE_THR, drawn_mask  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# Detection draws boxes from SCORE_THR up (mmdet's demo default), one box per object (ONE_BOX_IOU: of boxes
# overlapping above it, whatever their classes, the best); the JSON keeps every prediction the model returns
# (the config's test_cfg.rcnn.score_thr and NMS decide those).


def list_images(path: str) -> list:
    """The image files named by ``path`` (a file or a folder, not recursive), each checked to decode."""
    import mmcv
    if osp.isdir(path):
        files = sorted(osp.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise UserError(f'{path} holds no images ({", ".join(IMAGE_EXTENSIONS)})')
    elif osp.exists(path):
        files = [path]
    else:
        raise UserError(f'image {path} does not exist')
    for file in files:
        try:
            image = mmcv.imread(file)
        except Exception as e:  # noqa: BLE001  decoder errors differ by format and backend
            image, reason = None, f': {e}'
        else:
            reason = ''
        if image is None:
            raise UserError(f'{file} cannot be read as an image (not an image or a damaged file){reason}')
    return files


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def _write_json(path: str, data) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f)


def run_detection(cfg, images, checkpoint, weights, out_dir, device, score_thr, one_box_iou):
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=cfg, weights=checkpoint, device=device, show_progress=False)
    if checkpoint is None:
        inferencer.model.dataset_meta = _config_meta(cfg)
        inferencer.visualizer.dataset_meta = inferencer.model.dataset_meta
    _check_fits(inferencer.model, weights, checkpoint)
    import torch
    visualize = inferencer.visualize  # the pictures draw what drawn_mask keeps; postprocess (the JSON) gets all
    drawn_masks = []  # one per image, in the order DetInferencer visualizes and returns them

    def visualize_drawn(inputs, preds, **kwargs):
        drawn_preds = []
        for pred in preds:
            instances = pred.pred_instances
            drawn_masks.append(drawn_mask(instances.bboxes, instances.scores, score_thr, one_box_iou))
            drawn = pred.clone()  # a copy: the JSON keeps every instance
            drawn.pred_instances = instances[torch.from_numpy(drawn_masks[-1])]
            drawn_preds.append(drawn)
        return visualize(inputs, drawn_preds, **kwargs)

    inferencer.visualize = visualize_drawn
    results = inferencer(images, out_dir=out_dir, no_save_pred=False, pred_score_thr=score_thr)
    classes = inferencer.model.dataset_meta.get('classes', ())
    for image, pred, drawn in zip(images, results['predictions'], drawn_masks, strict=True):
        # mmdet's JSON has labels, scores, bboxes (x1, y1, x2, y2) and masks (RLE); add the class names
        pred['label_names'] = [classes[label] if label < len(classes) else str(label) for label in pred['labels']]
        json_path = osp.join(out_dir, 'preds', _stem(image) + '.json')
        _write_json(json_path, pred)
        kept = [(name, score) for name, score, d in zip(pred['label_names'], pred['scores'], drawn) if d]
        found = ', '.join(f'{name} {score:.2f}' for name, score in kept) or 'nothing'
        yield image, osp.join(out_dir, 'vis', osp.basename(image)), json_path, \
            f'{len(kept)} boxes drawn (score >= {score_thr}, one box per object at IoU > {one_box_iou}): {found}'


def run_classification(cfg, images, checkpoint, weights, out_dir, device):
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(model=cfg, pretrained=checkpoint or False, device=device)
    if inferencer.classes is None:
        inferencer.classes = _config_meta(cfg).get('classes')
    _check_fits(inferencer.model, weights, checkpoint)
    vis_dir = osp.join(out_dir, 'vis')
    os.makedirs(vis_dir, exist_ok=True)
    results = inferencer(images, show_dir=vis_dir)
    for image, pred in zip(images, results):
        pred = dict(pred_label=int(pred['pred_label']), pred_class=pred.get('pred_class'),
                    pred_score=float(pred['pred_score']), pred_scores=[float(s) for s in pred['pred_scores']])
        json_path = osp.join(out_dir, 'preds', _stem(image) + '.json')
        _write_json(json_path, pred)
        name = pred['pred_class'] if pred['pred_class'] is not None else pred['pred_label']
        yield image, osp.join(vis_dir, _stem(image) + '.png'), json_path, f'{name} ({pred["pred_score"]:.2f})'


def run_segmentation(cfg, images, checkpoint, weights, out_dir, device):
    import numpy as np
    from mmseg.apis import MMSegInferencer
    inferencer = MMSegInferencer(model=cfg, weights=checkpoint, device=device)
    meta = _config_meta(cfg) if checkpoint is None else {}
    if meta:  # mmseg falls back to Cityscapes' classes without a checkpoint
        inferencer.model.dataset_meta = dict(classes=meta['classes'], palette=meta.get('palette'))
        inferencer.visualizer.set_dataset_meta(meta['classes'], meta.get('palette'))
    _check_fits(inferencer.model, weights, checkpoint)
    for i, image in enumerate(images):  # one at a time: mmseg names its class maps by a counter
        result = inferencer(image, out_dir=out_dir)
        class_map = np.asarray(result['predictions'])
        classes = inferencer.model.dataset_meta.get('classes') or ()
        labels, counts = np.unique(class_map, return_counts=True)
        pixels = {(classes[k] if k < len(classes) else str(k)): int(n) for k, n in zip(labels.tolist(), counts)}
        json_path = osp.join(out_dir, 'preds', _stem(image) + '.json')
        _write_json(json_path, dict(pixels_per_class=pixels, height=int(class_map.shape[0]),
                                    width=int(class_map.shape[1]),
                                    class_map=osp.join('pred', str(i).zfill(8) + '_pred.png')))
        top = sorted(pixels.items(), key=lambda kv: -kv[1])[:3]
        yield image, osp.join(out_dir, 'vis', osp.basename(image)), json_path, \
            'largest classes: ' + ', '.join(f'{name} {n / class_map.size:.0%}' for name, n in top)


def _config_meta(cfg) -> dict:
    """Class names of the config's test dataset, for a model run without a checkpoint."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    metainfo = dict(dataset.get('metainfo') or {})
    return metainfo if metainfo.get('classes') else {}


def _check_fits(model, weights, checkpoint) -> None:
    """The inferencers load with strict=False (a wrong file only warns): refuse one that does not fit."""
    if checkpoint is not None:
        from mmfishnet.utils.config_models import check_fits
        check_fits(model, weights, checkpoint)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', help='an image file or a folder of images')
    parser.add_argument('config', help='an mmdet, mmpretrain or mmseg config with a FishNet backbone')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint of the whole model (from tools/train.py)')
    parser.add_argument('--out-dir', required=True, help='where vis/ and preds/ are written')
    parser.add_argument('--device', default=None, help="e.g. 'cpu' or 'cuda:0' (default: cuda if available)")
    parser.add_argument('--score-thr', type=float, default=SCORE_THR,
                        help=f'detection: lowest score drawn (default: {SCORE_THR}, as mmdet\'s demo)')
    parser.add_argument('--one-box-iou', type=float, default=ONE_BOX_IOU,
                        help=f'detection: of drawn boxes overlapping at IoU above this, whatever their classes, '
                        f'only the best is drawn (default: {ONE_BOX_IOU}; 1 draws every box over --score-thr)')
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    from mmfishnet.utils.config_models import config_task, read_config
    cfg = read_config(args.config, args.cfg_options)
    task = config_task(cfg, args.config)
    images = list_images(args.image)
    weights = None
    if args.checkpoint is not None:
        from mmfishnet.utils.config_checks import check_checkpoint
        weights = check_checkpoint(args.checkpoint)
    else:
        print('no checkpoint given: the predictions come from untrained weights')
    from mmfishnet.utils.config_models import skip_backbone_pretrained
    skip_backbone_pretrained(cfg.model)  # the whole model's weights come from the checkpoint
    # mmengine's visualizer warns for every box, polygon and label that touches the border
    warnings.filterwarnings('ignore', message='Warning: The .* is out of bounds')
    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    os.makedirs(args.out_dir, exist_ok=True)
    if cfg.get('default_scope'):  # the config's library builds the pipeline, also after another library ran in
        from mmengine.registry import init_default_scope  # this process (mmpretrain's inferencer keeps the current
        init_default_scope(cfg.default_scope)  # scope: 'PackInputs is not in the mmseg::transform registry')
    if task == 'detection':
        written = run_detection(cfg, images, args.checkpoint, weights, args.out_dir, device, args.score_thr,
                                args.one_box_iou)
    elif task == 'classification':
        written = run_classification(cfg, images, args.checkpoint, weights, args.out_dir, device)
    else:
        written = run_segmentation(cfg, images, args.checkpoint, weights, args.out_dir, device)
    for image, picture, json_path, summary in written:
        print(f'{image}: {summary}\n  picture: {picture}\n  predictions: {json_path}')


if __name__ == '__main__':
    sys.exit(run_cli(main))
