# FishNet-99 classifier on the bundled toy shapes (python tools/data/make_toy_data.py): 4 classes
# (circle, square, star, triangle), 32x32 images, 1600 train / 1000 val. Trains on a CPU in minutes.
# Sized so that top-1 hardly moves with the seed (docs/development.md, "How far the demo figures move"; measured with
# tools/analysis_tools/seed_spread.py): 2000 iterations, which 32x32 images make affordable, bring the
# loss near label smoothing's floor (shorter runs stop while it still falls steeply, where the seed
# decides how far they got); 1000 val images, so that one image is 0.1 point.
# Its checkpoint initialises the toy Mask R-CNN's backbone, as converted ImageNet weights do for COCO.
_base_ = [
    'mmpretrain::_base_/default_runtime.py', '../_base_/fishnet99_classifier.py',
    '../_base_/default_runtime_fishnet.py'
]

data_root = 'data/toy_cls'
model = dict(
    data_preprocessor=dict(
        num_classes=4, mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    head=dict(num_classes=4, topk=(1, ), loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 20  # 100 iterations each
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='SafeCheckpointHook', interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
