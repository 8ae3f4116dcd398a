# FishNet-99 on ImageNet-1k with the paper's recipe: SGD lr 0.1, momentum 0.9, weight decay 1e-4 (on all
# weights and biases, as the authors did), 256 images per iteration (8 GPUs x 32), 100 epochs, lr x0.1 at
# epochs 30/60/90; RandomResizedCrop 224 + flip + PCA lighting (std 0.1); test: resize 256, centre crop 224.
# Needs ImageNet at data/imagenet (mmpretrain's layout).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/schedules/imagenet_bs256.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/fishnet99_classifier.py',
    '../_base_/default_runtime_fishnet.py',
]


# PCA lighting with ImageNet's eigenvalues/vectors, in BGR order (images are loaded as BGR)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Lighting',
         eigval=[55.4625, 4.7940, 1.1475],
         eigvec=[[-0.5836, -0.6948, 0.4203], [-0.5808, -0.0045, -0.8140], [-0.5675, 0.7192, 0.4009]],
         alphastd=0.1,
         to_rgb=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', max_keep_ckpts=3))
# mmpretrain's schedule as a loop that resumes in the middle of an epoch (docs/fault_tolerance.md)
train_cfg = dict(_delete_=True, type='ResumableEpochBasedTrainLoop', max_epochs=100, val_interval=1)
