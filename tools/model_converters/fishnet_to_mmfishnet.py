# Copyright (c) mmfishnet contributors. All rights reserved.
"""Convert an official FishNet ImageNet checkpoint to mmfishnet's layout.

    python tools/model_converters/fishnet_to_mmfishnet.py fishnet150_ckpt.tar fishnet150_in1k.pth

The result loads with strict=True into configs/fishnet/fishnet150_8xb32_in1k.py's classifier, and its
``backbone.`` part into the detection configs' FishNet (init_cfg Pretrained, prefix='backbone.').
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmfishnet.utils.cli import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official checkpoint (*_ckpt.tar, a torch.save dict with state_dict)')
    parser.add_argument('dst', help='where to write the converted checkpoint (.pth)')
    parser.add_argument('--trust-source', action='store_true',
                        help='allow full unpickling of SRC when it holds more than tensors and plain '
                        'Python values (runs code from the file: only for files you trust)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmfishnet.converters import convert_checkpoint_file
    info = convert_checkpoint_file(args.src, args.dst, trust_source=args.trust_source)
    print(f"converted FishNet-{info['arch']} ({info['layout']} layout, {info['num_tensors']} tensors) "
          f'to {args.dst}')
    for note in info['notes']:
        print(f'note: {note}')


if __name__ == '__main__':
    sys.exit(run_cli(main))
