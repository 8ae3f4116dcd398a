# Copyright (c) mmfishnet contributors. All rights reserved.
"""Distributed training without GPUs: the one place mmfishnet departs from mmengine's launcher.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper is given
``device_ids=[local_rank]``; both fail on a CPU-only machine. Where CUDA is available nothing here
changes anything: mmengine initialises NCCL as usual. Without CUDA, :func:`setup_cpu_distributed`
creates the gloo process group itself (from the ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``
environment that ``torchrun`` or Slurm provides) before the Runner is built, so the Runner skips
``init_dist``, and asks for a DDP wrapper without ``device_ids``. torch's SyncBN needs GPUs, so on CPU
SyncBN configs are refused with a clear error.
"""
import os

import torch
import torch.distributed as dist


def _slurm_env_to_torch_env() -> None:
    """Fill the env:// variables from Slurm's when launched by ``srun`` (``--launcher slurm``)."""
    if 'SLURM_PROCID' not in os.environ:
        return
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        import subprocess
        nodes = os.environ.get('SLURM_NODELIST', '127.0.0.1')
        first = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1') or '127.0.0.1'
        os.environ['MASTER_ADDR'] = first
    os.environ.setdefault('MASTER_PORT', '29500')


def _syncbn_paths(node, where='model') -> list:
    """The config paths of the ``norm_cfg`` entries that ask for SyncBN (an mmseg model has three: the
    backbone's, the decode head's and the auxiliary head's)."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            return [where]
        return [p for key, value in node.items() for p in _syncbn_paths(value, f'{where}.{key}')]
    if isinstance(node, (list, tuple)):
        return [p for i, value in enumerate(node) for p in _syncbn_paths(value, f'{where}.{i}')]
    return []


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Prepare ``cfg`` (in place) for a multi-process run on CPU. Returns True when it did."""
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'--launcher {launcher} needs GPUs here; on CPU use --launcher pytorch '
                         f'(tools/dist_train.sh) or slurm')
    syncbn = _syncbn_paths(cfg.get('model', {}))
    if syncbn:
        raise ValueError("SyncBN needs GPUs (torch's SyncBatchNorm has no CPU kernel); on CPU train with "
                         '--cfg-options ' + ' '.join(f'{path}.type=BN' for path in syncbn))
    if launcher == 'slurm':
        _slurm_env_to_torch_env()
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://')
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg['dist_cfg'] = dict(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper['device_ids'] = None  # CPU modules: DDP must not be pinned to a device
    cfg.model_wrapper_cfg = wrapper
    return True


def teardown_distributed() -> None:
    """Wait for every rank, then close the process group. Without this, a gloo process can abort at
    interpreter exit ('terminate called without an active exception') while its peers still talk."""
    if dist.is_available() and dist.is_initialized():
        cpu = dist.get_backend() == 'gloo'
        dist.barrier()
        dist.destroy_process_group()
        if cpu:  # gloo's threads can still abort the interpreter's teardown: leave without it
            import logging
            import sys
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
