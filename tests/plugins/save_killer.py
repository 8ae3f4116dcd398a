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


@HOOKS.register_module()
class KillWhileWriting(Hook):
    """SIGKILLs its own process while the checkpoint of iteration ``iteration`` is being written: as soon as
    a file appears in the work dir or one there changes (a temporary file, or the checkpoint itself being
    overwritten in place), i.e. after its first bytes, not before the write began."""

    def __init__(self, iteration: int):
        self.iteration = iteration

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint['meta']['iter'] != self.iteration:
            return
        import threading
        import time

        def files():
            return {e.name: (e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(runner.work_dir)
                    if e.is_file()}

        before = files()

        def watch():
            while True:
                try:
                    now = files()
                except FileNotFoundError:  # a temporary file renamed between listing and stat
                    now = None
                if now is None or now != before:
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(0.0005)

        threading.Thread(target=watch, daemon=True).start()
