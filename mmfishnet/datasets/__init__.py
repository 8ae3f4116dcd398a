# Copyright (c) mmfishnet contributors. All rights reserved.
from .toy_data import make_toy_classification, make_toy_coco
from .toy_seg import SEG_CLASSES, make_toy_seg

__all__ = ['make_toy_classification', 'make_toy_coco', 'make_toy_seg', 'SEG_CLASSES']
