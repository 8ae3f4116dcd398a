# Copyright (c) mmfishnet contributors. All rights reserved.
"""Distributed training without GPUs: the one place mmfishnet departs from mmengine's launcher.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper is given
``device_ids=[local_rank]``; both fail on a CPU-only machine. Where CUDA is available mmengine
initialises NCCL as usual (under Slurm with the rendezvous address and port set here first, see
:func:`prepare_slurm_env`). Without CUDA, :func:`setup_cpu_distributed`
creates the gloo process group itself (from the ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``
environment that ``torchrun`` or Slurm provides) before the Runner is built, so the Runner skips
``init_dist``, and asks for a DDP wrapper without ``device_ids``. torch's SyncBN needs GPUs, so on CPU
SyncBN configs are refused with a clear error.
"""
import os

import torch
import torch.distributed as dist

from .errors import UserError


def slurm_master_port() -> str:
    """The rendezvous port of a Slurm job: ``MASTER_PORT`` (or ``PORT``) when set, else one derived from
    ``SLURM_JOB_ID`` (20000-29999, below Linux's ephemeral range), so that two jobs sharing a node do not
    both take torch's default 29500; 29500 outside a Slurm job. The one home of this rule: ``tools/dist_run.sh``
    asks it for a multi-machine launch in a Slurm job."""
    port = os.environ.get('MASTER_PORT') or os.environ.get('PORT')
    if port:
        return port
    job = os.environ.get('SLURM_JOB_ID', '')
    return str(20000 + int(job) % 10000) if job.isdigit() else '29500'


def launch_id():
    """What identifies this launch across the restarts of its processes, or None for a process started by
    hand: the Slurm job and step (a requeued job keeps both), else torchrun's run id
    (``TORCHELASTIC_RUN_ID``, the same across its restarts: ``tools/dist_run.sh`` always sets it, to
    ``RUN_ID``, else the Slurm job, else on one machine a new id for each launch). torchrun's static
    rendezvous without ``--rdzv-id`` calls every launch "none": no id."""
    job = os.environ.get('SLURM_JOB_ID')
    if job:
        return f"slurm:{job}.{os.environ.get('SLURM_STEP_ID', '')}"
    run = os.environ.get('TORCHELASTIC_RUN_ID')
    return f'torchrun:{run}' if run and run != 'none' else None


def checkpoint_of_this_launch(work_dir: str):
    """The newest complete checkpoint in ``work_dir`` if this launch wrote it (its meta's ``launch_id``,
    recorded by :class:`~mmfishnet.engine.LatestCheckpointHook`), else None: a restarted worker group or a
    requeued Slurm job resumes from it by itself, while a new launch never does unless asked.

    Call it on every rank once the process group is up: rank 0 decides and the others take its answer (one
    broadcast). Deciding on each rank, one rank that could not read the file or saw a stale copy of the work
    dir (a shared file system) started afresh while the others resumed, and their collectives no longer
    matched; now such a rank fails loudly when it loads the file rank 0 named. (The restart count cannot
    decide either: torchrun counts a restart only on the machine whose workers failed.)"""
    from mmengine.dist import broadcast_object_list, get_rank, get_world_size
    found = [_newest_checkpoint_of(launch_id(), work_dir) if get_rank() == 0 else None]
    if get_world_size() > 1:
        broadcast_object_list(found, src=0)
    return found[0]


def _newest_checkpoint_of(launch, work_dir: str):
    """The newest complete checkpoint in ``work_dir`` if launch ``launch`` (not None) wrote it, else None."""
    if launch is None:
        return None
    from .checkpoint import allow_runner_checkpoint_types, find_resumable_checkpoint
    found = find_resumable_checkpoint(work_dir)
    if found is None:
        return None
    allow_runner_checkpoint_types()
    try:  # mmap: the meta is read without reading the tensors
        meta = torch.load(found, map_location='cpu', mmap=True, weights_only=True).get('meta', {})
    except Exception:  # noqa: BLE001  a checkpoint not of this project's making: not this launch's
        return None
    return found if meta.get('launch_id') == launch else None


def prepare_slurm_env() -> None:
    """Fill the env:// variables from Slurm's in a task started by ``srun`` (``--launcher slurm``), on GPUs
    and CPUs alike (mmengine's own Slurm set-up keeps a ``MASTER_ADDR``/``MASTER_PORT`` it finds): the
    first host of the job (``scontrol show hostnames``, its standard output only) and
    :func:`slurm_master_port`."""
    if 'SLURM_PROCID' not in os.environ:
        return
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in os.environ:
        import subprocess
        nodes = os.environ.get('SLURM_JOB_NODELIST') or os.environ.get('SLURM_NODELIST', '')
        try:
            found = subprocess.run(['scontrol', 'show', 'hostnames', nodes], capture_output=True, text=True)
        except OSError as e:
            raise UserError(f'scontrol cannot be run ({e.strerror}) to find the first host of {nodes!r}; '
                            f'set MASTER_ADDR') from e
        hosts = found.stdout.split()
        if found.returncode != 0 or not hosts:
            raise UserError(f'scontrol show hostnames {nodes} failed: {found.stderr.strip()[:300]}; set '
                            f'MASTER_ADDR')
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ['MASTER_PORT'] = slurm_master_port()


def _warn_shared_store() -> None:
    """Warn a torchrun launch with restarts whose workers share the agent's store: a restarted group can
    read the dead attempt's keys from it (tools/dist_run.sh asks for a fresh store per round instead)."""
    if os.environ.get('TORCHELASTIC_USE_AGENT_STORE') == 'True' and \
            os.environ.get('TORCHELASTIC_MAX_RESTARTS', '0') != '0':
        import warnings
        warnings.warn("torchrun's workers share its agent's store, which outlives a restart, so a restarted group "
                      'can read the previous attempt\'s keys and fail or hang; launch with tools/dist_train.sh, or '
                      'set TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 with --rdzv-backend=c10d', stacklevel=2)


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
    """Prepare ``cfg`` (in place) for a multi-process run on CPU. Returns True when it did. Under Slurm
    it fills the rendezvous environment first, also on GPUs (:func:`prepare_slurm_env`). The gloo group is
    created from the ``env://`` variables: under ``tools/dist_run.sh`` worker rank 0 hosts a new store for
    every attempt of the group, so a restarted group never meets the previous attempt's keys."""
    if launcher == 'slurm':
        prepare_slurm_env()
    if launcher == 'pytorch':
        _warn_shared_store()
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise UserError(f'--launcher {launcher} needs GPUs here; on CPU use --launcher pytorch '
                         f'(tools/dist_train.sh) or slurm')
    syncbn = _syncbn_paths(cfg.get('model', {}))
    if syncbn:
        raise UserError("SyncBN needs GPUs (torch's SyncBatchNorm has no CPU kernel); on CPU train with "
                        '--cfg-options ' + ' '.join(f'{path}.type=BN' for path in syncbn))
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


_closed = []  # set by teardown_distributed: this process ran (and closed) a process group


def teardown_distributed(wait: bool = True) -> None:
    """Close the process group: after a barrier when ``wait`` (the run ended on every rank), at once
    otherwise (an error; the other ranks may be gone). A gloo process that exits with its group open
    aborts ('terminate called without an active exception') instead of returning its exit code; one that
    closed it still has to end without finalizing the interpreter (``mmfishnet.utils.cli.run_cli``)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
        _closed.append(True)


def closed_a_process_group() -> bool:
    """Whether :func:`teardown_distributed` closed a process group in this process."""
    return bool(_closed)

