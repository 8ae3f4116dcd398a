# mmfishnet's additions to the runtime, a base of every detection and classification config beside the
# library's own default_runtime.py (mmdet's or mmpretrain's): import mmfishnet, which registers FishNet and
# the hooks, and run the hooks that keep long runs safe:
# - NonFiniteLossHook: stop on a NaN/inf loss, naming the iteration, before the broken weights are saved;
# - RandomStateHook: the random state in every checkpoint, so --resume continues the same random stream;
# - NumClassesCheckHook: refuse to train or test when a head's num_classes differs from the dataset's;
# - LatestCheckpointHook: work_dir/latest.pth every 20 minutes (a kill loses at most that, plus the restart),
#   and on SIGTERM or Slurm's warning signal a save and exit code 75 for a requeue (docs/fault_tolerance.md);
#   its mid-epoch checkpoints need train_cfg.type='ResumableEpochBasedTrainLoop', which the configs set.
# - FastPathHook: the training fast path (docs/training_speed.md): refuse a `compile` / `compile_modules`
#   setting that does not work (SyncBN, with_cp, CUDA graphs with DDP or varying shapes) and compile the
#   modules `compile_modules` names. It does nothing when neither key is set.
# The checkpoint hook is an entry of default_hooks, which the library's runtime defines and mmengine lets no
# second base redefine; each config sets default_hooks.checkpoint.type='SafeCheckpointHook' (checkpoints
# written atomically, the outdated one deleted only after the new one is complete) with its interval.
custom_imports = dict(imports=['mmfishnet'], allow_failed_imports=False)
custom_hooks = [
    dict(type='NonFiniteLossHook'), dict(type='RandomStateHook'), dict(type='NumClassesCheckHook'),
    dict(type='LatestCheckpointHook', minutes=20), dict(type='FastPathHook')
]
