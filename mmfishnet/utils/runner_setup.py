# Copyright (c) mmfishnet contributors. All rights reserved.
"""What ``tools/train.py`` and ``tools/test.py`` share: the config their command line describes
(:func:`load_config`), the Runner built for the launcher (:func:`build_runner`) and, for testing, the
drawing of predictions (:func:`enable_visualization`). The tools keep only their own options."""
import os
import os.path as osp

from .errors import UserError


def load_config(args):
    """The config of ``args.config`` with ``--cfg-options`` merged, ``--launcher``, ``--trust-checkpoint`` and
    the work dir (``--work-dir``, else the config's, else ``./work_dirs/<config name>``) applied."""
    from .config_checks import default_work_dir
    from .config_models import read_config
    cfg = read_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if getattr(args, 'trust_checkpoint', False):
        # torch >= 2.6 honours this for every torch.load that does not pass weights_only itself,
        # which is how mmengine 0.10.7 loads resume, load_from and Pretrained checkpoints.
        # FishNet's Pretrained loading reads it too (mmfishnet.utils.checkpoint.trust_requested).
        from .checkpoint import TRUST_ENV
        os.environ[TRUST_ENV] = '1'
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    return cfg


def build_runner(cfg):
    """The config's Runner (``runner_type`` if it names one), after preparing a multi-process run on CPU
    or under Slurm for ``cfg.launcher`` (:func:`~mmfishnet.utils.dist.setup_cpu_distributed`)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from .dist import setup_cpu_distributed
    setup_cpu_distributed(cfg, cfg.launcher)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def resume_this_launch(runner, trust: bool = False) -> None:
    """Make ``runner`` resume from the newest checkpoint this launch wrote, if there is one (``tools/train.py``
    without ``--resume``: a restarted worker group or a requeued Slurm job goes on by itself). Decided on rank
    0 once the process group is up, which is why the Runner is built first
    (:func:`~mmfishnet.utils.dist.checkpoint_of_this_launch`); mmengine 0.10.7's Runner reads what to resume
    from in ``runner.train()`` (``load_or_resume``: ``_resume``, ``_load_from``)."""
    from .config_checks import check_checkpoint
    from .dist import checkpoint_of_this_launch
    found = checkpoint_of_this_launch(runner.work_dir)
    if found is None:
        return
    print(f'this launch was restarted: resuming from {found}')
    check_checkpoint(found, trust=trust)
    runner._resume, runner._load_from = True, found


def enable_visualization(cfg, show_dir: str) -> None:
    """Make the test run draw its predictions on every test image into ``show_dir``, with the
    visualization hook of the config's library (``default_hooks.visualization``):

    - mmpretrain's ``VisualizationHook``: ``enable``, ``interval=1`` (its default draws one test sample in
      5000; mmpretrain's own tools/test.py sets it from its ``--interval``, default 1) and ``out_dir``, which it
      takes as given (relative to the current directory): ``<work_dir>/<show_dir>`` here.
    - mmdet's ``DetVisualizationHook``: ``draw`` and ``test_out_dir`` (it draws every test image; its
      ``interval`` applies to validation only). Pictures in ``<work_dir>/<timestamp>/<show_dir>``.
    - mmseg's ``SegVisualizationHook``: ``draw`` (every test image); it saves through the visualizer's
      backends, whose ``save_dir`` becomes ``<work_dir>/<show_dir>`` (pictures in its ``vis_data/vis_image/``).
    """
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise UserError('--show-dir needs a visualization hook in default_hooks')
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':
        hooks.visualization.update(enable=True, interval=1, out_dir=osp.join(cfg.work_dir, show_dir))
    elif scope == 'mmseg':
        hooks.visualization.update(draw=True)
        cfg.visualizer.save_dir = osp.join(cfg.work_dir, show_dir)
    else:
        hooks.visualization.update(draw=True, test_out_dir=show_dir)
