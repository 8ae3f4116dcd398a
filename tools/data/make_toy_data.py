# Copyright (c) mmfishnet contributors. All rights reserved.
"""Generate the bundled toy datasets (deterministic; nothing is downloaded).

    python tools/data/make_toy_data.py                 # data/toy_cls, data/toy_coco and data/toy_seg
    python tools/data/make_toy_data.py --out-dir /tmp/d --only coco --num-train 8 --num-val 4
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfishnet.utils.cli import run_cli  # noqa: E402
from mmfishnet.utils.errors import UserError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='data', help='parent folder of toy_cls/, toy_coco/, toy_seg/')
    parser.add_argument('--only', choices=['cls', 'coco', 'seg'],
                        help='generate one of them (seg is derived from toy_coco, made first if missing)')
    parser.add_argument('--num-train', type=int, help='training images (per class for cls)')
    parser.add_argument('--num-val', type=int, help='validation images (per class for cls)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for name in ('num_train', 'num_val'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f'--{name.replace("_", "-")} must be at least 1, got {value}')
    from mmfishnet.datasets import make_toy_classification, make_toy_coco
    sizes = {k: v for k, v in dict(num_train=args.num_train, num_val=args.num_val).items() if v is not None}
    if args.only in (None, 'cls'):
        print(json.dumps(make_toy_classification(osp.join(args.out_dir, 'toy_cls'), seed=args.seed, **sizes)))
    coco_dir = osp.join(args.out_dir, 'toy_coco')
    if args.only in (None, 'coco') or (args.only == 'seg' and not osp.isdir(coco_dir)):
        print(json.dumps(make_toy_coco(coco_dir, seed=args.seed, **sizes)))
    if args.only in (None, 'seg'):
        from mmfishnet.datasets import make_toy_seg
        print(json.dumps(make_toy_seg(osp.join(args.out_dir, 'toy_seg'), coco_dir)))


if __name__ == '__main__':
    sys.exit(run_cli(main))
