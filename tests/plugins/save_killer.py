"""Test-only hook: SIGKILLs its own process while the checkpoint of epoch ``epoch`` is being saved, inside
``Runner.save_checkpoint`` (after the checkpoint hook's bookkeeping, before the file is written), as a
power cut or an OOM kill would."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillWhileSaving(Hook):

    def __init__(self, epoch: int):
        self.epoch = epoch

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint['meta']['epoch'] == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)
