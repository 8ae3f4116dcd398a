# Copyright (c) mmfishnet contributors. All rights reserved.
from .toy_data import make_toy_classification, make_toy_coco

__all__ = ['make_toy_classification', 'make_toy_coco']
