# Copyright (c) mmfishnet contributors. All rights reserved.
from .fish_blocks import ChannelReduction, PreActBottleneck
from .fishnet import FishNet

__all__ = ['ChannelReduction', 'PreActBottleneck', 'FishNet']
