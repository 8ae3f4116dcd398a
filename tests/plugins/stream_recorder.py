"""Test-only hook: at every training iteration, draws once from Python's, NumPy's and torch's generators and
appends [iteration, the three draws] to $STREAM_RECORD.<rank> (JSON lines), so that two runs can be compared
draw by draw."""
import json
import os
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RandomStreamRecorder(Hook):
    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        with open(f"{os.environ['STREAM_RECORD']}.{runner.rank}", 'a') as f:
            f.write(json.dumps([runner.iter, random.random(), float(np.random.rand()), float(torch.rand(1))]) + '\n')
