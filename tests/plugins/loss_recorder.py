"""Test-only hook: records the loss averaged over all ranks at every iteration into $LOSS_RECORD (JSON)."""
import json
import os

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class GlobalLossRecorder(Hook):
    priority = 'VERY_HIGH'

    def before_train(self, runner):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = outputs['loss'].detach().clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(loss)
            loss /= dist.get_world_size()
        self.losses.append(float(loss))

    def after_train(self, runner):
        if runner.rank == 0:
            with open(os.environ['LOSS_RECORD'], 'w') as f:
                json.dump(self.losses, f)
