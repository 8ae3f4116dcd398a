# The toy classifier on the training fast path (docs/training_speed.md), for a CUDA GPU: bf16 autocast
# without a loss scaler (bf16 has float32's range), channels-last (FishNet's default), cudnn.benchmark, and
# the Runner's compile of train_step with CUDA graphs, which every batch of one shape allows (the 1600
# training images are 100 full batches; drop_last keeps it so for other sizes). The checks of
# configs/_base_/default_runtime_fishnet.py's FastPathHook apply (no SyncBN, no with_cp, one process).
_base_ = './fishnet99_1xb16_toy-cls.py'

compile = dict(mode='reduce-overhead')
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False))
env_cfg = dict(cudnn_benchmark=True)
train_dataloader = dict(drop_last=True)
