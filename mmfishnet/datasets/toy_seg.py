# Copyright (c) mmfishnet contributors. All rights reserved.
"""The toy semantic-segmentation dataset: the toy COCO's images with per-pixel class labels, in
MMSegmentation's folder layout::

    toy_seg/
        img_dir/{train,val}/<name>.png    the toy COCO's images, byte for byte
        ann_dir/{train,val}/<name>.png    8-bit label maps: 0 background, 1 circle, 2 square, 3 triangle

It is derived from a toy COCO (:func:`~mmfishnet.datasets.make_toy_coco`), so the two share their shapes,
images and split, and it is as deterministic as that one. A pixel's label is the class of the instance
mask covering it (the masks are the visible parts and do not overlap); pixels of no instance are
background, including the few slivers under 20 pixels that the toy COCO leaves unannotated.
"""
import contextlib
import io
import json
import os
import os.path as osp
import shutil

import numpy as np
from PIL import Image

from .toy_data import DET_CLASSES

SEG_CLASSES = ('background', ) + DET_CLASSES


def make_toy_seg(out_dir: str, coco_dir: str) -> dict:
    """Write ``out_dir`` (the layout above) from the toy COCO at ``coco_dir``. Returns a summary with the
    images per split and the share of background pixels (what predicting background everywhere scores:
    background IoU = that share, every other class 0)."""
    from pycocotools.coco import COCO
    summary = dict(root=out_dir, classes=list(SEG_CLASSES))
    for split in ('train', 'val'):
        ann_file = osp.join(coco_dir, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'{ann_file} does not exist: generate the toy COCO first '
                                    '(python tools/data/make_toy_data.py)')
        with open(ann_file) as f:
            categories = json.load(f)['categories']
        names = [c['name'] for c in sorted(categories, key=lambda c: c['id'])]
        if tuple(names) != SEG_CLASSES[1:]:
            raise ValueError(f'{ann_file} has classes {names}, expected {list(SEG_CLASSES[1:])}')
        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints its loading times
            coco = COCO(ann_file)
        img_dir, ann_dir = osp.join(out_dir, 'img_dir', split), osp.join(out_dir, 'ann_dir', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        background = total = 0
        for image_id in sorted(coco.getImgIds()):
            info = coco.loadImgs(image_id)[0]
            labels = np.zeros((info['height'], info['width']), dtype=np.uint8)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                labels[coco.annToMask(ann).astype(bool)] = ann['category_id']  # ids 1..3 = labels 1..3
            name = osp.splitext(info['file_name'])[0] + '.png'
            shutil.copyfile(osp.join(coco_dir, split, info['file_name']), osp.join(img_dir, name))
            Image.fromarray(labels).save(osp.join(ann_dir, name))
            background += int((labels == 0).sum())
            total += labels.size
        summary[split] = dict(images=len(coco.getImgIds()), background_share=round(background / total, 4))
    return summary
