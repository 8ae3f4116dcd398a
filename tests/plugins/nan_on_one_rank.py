"""Test-only hook: one rank reports a NaN loss at one iteration while the others see a finite one (as when
only that rank's batch diverges). It runs ahead of NonFiniteLossHook and after the optimizer step, so the
weights stay finite everywhere and only the ranks' agreement decides whether all of them stop."""
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class NaNLossOnOneRank(Hook):
    priority = 'HIGH'

    def __init__(self, rank: int = 1, iteration: int = 2):
        self.rank, self.iteration = rank, iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_rank() == self.rank and runner.iter + 1 == self.iteration:
            outputs['loss'] = torch.tensor(float('nan'))
