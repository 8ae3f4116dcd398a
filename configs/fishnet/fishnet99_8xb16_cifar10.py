# FishNet-99 on CIFAR-10, the seeds' experiment: the stem keeps full resolution (stem_stride=1, so the
# 32x32 input reaches the tail at 32x32 and the head ends at 4x4); SGD lr 0.1, momentum 0.9, wd 1e-4,
# 100 epochs, lr x0.1 every 30 epochs; 128 images per iteration (8 x 16; 1 GPU x 128 works the same).
# Reads the standard python pickles: data/cifar10/cifar-10-batches-py/ (never downloads).
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/fishnet99_classifier.py',
    '../_base_/default_runtime_fishnet.py',
]

model = dict(backbone=dict(stem_stride=1), head=dict(num_classes=10))

train_dataloader = dict(dataset=dict(download=False))
val_dataloader = dict(dataset=dict(download=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', max_keep_ckpts=3))
