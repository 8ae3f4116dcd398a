"""Test-only hook: every validation iteration lasts ``seconds`` longer, so that a validation outlasts the
grace period a cluster gives between SIGTERM and SIGKILL."""
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SlowValidation(Hook):

    def __init__(self, seconds: float):
        self.seconds = seconds

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        time.sleep(self.seconds)
