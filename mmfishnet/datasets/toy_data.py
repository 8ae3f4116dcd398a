# Copyright (c) mmfishnet contributors. All rights reserved.
"""Deterministic generators of the small datasets that ship with mmfishnet (nothing is downloaded).

- :func:`make_toy_classification`: an image-folder dataset (``train/<class>/*.png``, ``val/...``) of one
  coloured shape per image on a textured background; the class is the shape.
- :func:`make_toy_coco`: a COCO-format instance-segmentation dataset (``train/``, ``val/``,
  ``annotations/instances_{train,val}.json``) of several shapes per image with polygon masks.

The same seed gives byte-identical files.
"""
import json
import math
import os
import os.path as osp
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

CLS_CLASSES = ('circle', 'square', 'triangle', 'star')
DET_CLASSES = ('circle', 'square', 'triangle')


def shape_polygon(kind: str, cx: float, cy: float, radius: float, angle: float) -> List[Tuple[float, float]]:
    """Vertices of a shape centred at (cx, cy) with circumradius ``radius``, rotated by ``angle``."""
    if kind == 'circle':
        n, radii = 32, [radius]
    elif kind == 'square':
        n, radii = 4, [radius]
    elif kind == 'triangle':
        n, radii = 3, [radius]
    elif kind == 'star':
        n, radii = 10, [radius, radius * 0.45]
    else:
        raise ValueError(f'unknown shape {kind!r}')
    points = []
    for i in range(n):
        r = radii[i % len(radii)]
        a = angle + 2 * math.pi * i / n
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return points


def textured_background(rng: np.random.RandomState, height: int, width: int) -> np.ndarray:
    """A muted background: a colour gradient, low-frequency stripes and pixel noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(60, 150, size=3)
    slope = rng.uniform(-0.4, 0.4, size=(2, 3))
    freq, phase = rng.uniform(0.05, 0.3), rng.uniform(0, 2 * math.pi)
    direction = rng.uniform(0, math.pi)
    stripes = 18 * np.sin(freq * (xx * math.cos(direction) + yy * math.sin(direction)) + phase)
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1] + stripes[..., None]
    img += rng.normal(0, 10, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _bright_colour(rng: np.random.RandomState) -> Tuple[int, int, int]:
    colour = rng.randint(0, 256, size=3)
    colour[rng.randint(3)] = rng.randint(200, 256)
    return tuple(int(c) for c in colour)


def make_toy_classification(out_dir: str, num_train: int = 400, num_val: int = 250, size: int = 32,
                            classes: Sequence[str] = CLS_CLASSES, seed: int = 0) -> dict:
    """``num_train`` / ``num_val`` images per class. Returns a summary dict."""
    rng = np.random.RandomState(seed)
    counts = {}
    for split, num in (('train', num_train), ('val', num_val)):
        for label, kind in enumerate(classes):
            folder = osp.join(out_dir, split, kind)
            os.makedirs(folder, exist_ok=True)
            for i in range(num):
                img = Image.fromarray(textured_background(rng, size, size))
                radius = rng.uniform(0.22, 0.38) * size
                cx, cy = rng.uniform(radius, size - radius, size=2)
                ImageDraw.Draw(img).polygon(
                    shape_polygon(kind, cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=_bright_colour(rng))
                img.save(osp.join(folder, f'{kind}_{i:04d}.png'))
        counts[split] = num * len(classes)
    return dict(root=out_dir, classes=list(classes), **counts)


def make_toy_coco(out_dir: str, num_train: int = 160, num_val: int = 1000, size: Tuple[int, int] = (128, 128),
                  max_objects: int = 3, classes: Sequence[str] = DET_CLASSES, seed: int = 0) -> dict:
    """Images of ``size`` (h, w) with 1..``max_objects`` shapes each, with polygon masks, in COCO format.
    Later shapes occlude earlier ones; each mask is the visible part, stored as polygon(s) of the shape
    when nothing covers it and as RLE otherwise. The val split is drawn after the train split from the
    same stream, so ``num_val`` does not change the training images. Its default, 1000 images (about
    2000 objects), keeps the demo's mAP from moving with the seed: with 40 images (75 objects) the same
    six trained detectors spread over 3.9 / 6.2 points of bbox / segm mAP, with 1000 over 2.0 / 1.5
    (docs/development.md, "How far the demo figures move")."""
    from pycocotools import mask as mask_utils
    rng = np.random.RandomState(seed)
    height, width = size
    summary = dict(root=out_dir, classes=list(classes))
    for split, num in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, num + 1):
            img = Image.fromarray(textured_background(rng, height, width))
            draw = ImageDraw.Draw(img)
            objects = []
            for _ in range(rng.randint(1, max_objects + 1)):
                label = rng.randint(len(classes))
                radius = rng.uniform(0.16, 0.3) * min(height, width)
                cx = rng.uniform(radius, width - radius)
                cy = rng.uniform(radius, height - radius)
                polygon = shape_polygon(classes[label], cx, cy, radius, rng.uniform(0, 2 * math.pi))
                draw.polygon(polygon, fill=_bright_colour(rng))
                flat = [round(v, 2) for point in polygon for v in point]
                # rasterised as COCO tools do, so that area and bbox agree with annToMask exactly
                mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([flat], height, width)))
                objects.append((label, flat, mask.astype(bool)))
            file_name = f'{split}_{image_id:05d}.png'
            img.save(osp.join(out_dir, split, file_name))
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            covered = np.zeros((height, width), dtype=bool)
            for label, polygon, mask in reversed(objects):  # front to back
                visible = mask & ~covered
                covered |= mask
                if visible.sum() < 20:
                    continue
                ys, xs = np.nonzero(visible)
                x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
                if visible.sum() == mask.sum():
                    segmentation = [polygon]
                else:
                    rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
                    segmentation = dict(size=rle['size'], counts=rle['counts'].decode('ascii'))
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=int(label) + 1,
                    bbox=[int(x0), int(y0), int(x1 - x0), int(y1 - y0)], area=int(visible.sum()),
                    segmentation=segmentation, iscrowd=0))
        coco = dict(images=images, annotations=annotations,
                    categories=[dict(id=i + 1, name=name) for i, name in enumerate(classes)])
        os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
        with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        summary[split] = dict(images=len(images), instances=len(annotations))
    return summary
