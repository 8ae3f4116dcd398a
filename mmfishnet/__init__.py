# Copyright (c) mmfishnet contributors. All rights reserved.
"""mmfishnet: the FishNet backbone for MMDetection, MMPretrain and MMSegmentation.

``import mmfishnet`` (or ``custom_imports=dict(imports=['mmfishnet'])`` in a config) registers
:class:`~mmfishnet.models.FishNet` in mmengine's root ``MODELS`` registry, which mmdet's, mmpretrain's and
mmseg's registries fall back to, so ``dict(type='FishNet', ...)`` builds under any of their default scopes.
It also lets torch's safe loader read the checkpoints mmengine's Runner writes
(see :mod:`mmfishnet.utils.checkpoint`).
"""
from .utils.compat import disable_broken_mmpretrain_multimodal

disable_broken_mmpretrain_multimodal()  # before anything imports mmpretrain.models

from .engine import *  # noqa: F401,F403,E402
from .models import *  # noqa: F401,F403,E402
from .utils.checkpoint import allow_runner_checkpoint_types  # noqa: E402

allow_runner_checkpoint_types()

__version__ = '0.1.0'
