"""Test-only hook: SIGKILLs its own process while the checkpoint of epoch ``epoch`` is being saved, inside
``Runner.save_checkpoint`` (after the checkpoint hook's bookkeeping, before the file is written), as a
power cut or an OOM kill would. With ``best=True`` only while a best checkpoint (saved without the
optimizer) is being saved."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillWhileSaving(Hook):

    def __init__(self, epoch: int, best: bool = False):
        self.epoch, self.best = epoch, best

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint['meta']['epoch'] == self.epoch and (not self.best or 'optimizer' not in checkpoint):
            os.kill(os.getpid(), signal.SIGKILL)
