# Mask R-CNN with FishNet-99 + FPN on the bundled toy COCO-format shapes (python tools/data/make_toy_data.py):
# 3 classes (circle, square, triangle), 128x128 images (160 train / 1000 val), 1-3 instances each,
# polygon/RLE masks. The 1000 val images (about 2000 objects) make the final mAP a stable demo figure: over
# seeds 0-2 and both memory formats it spans 2.0 / 1.5 points of bbox / segm mAP (3.9 / 6.2 on 40 images;
# docs/development.md, "How far the demo figures move").
# Recipe: mmdet's Mask R-CNN R-50 FPN base at 128x128 with 128-wide FPN/heads, 800 iterations (20 epochs of 40),
# learning-rate steps at epochs 16 and 19, and three changes from the base, each measured (docs/development.md,
# "The demo detector's recipe"): RPN anchors of two scales, [8, 11.3], as the default 8 (32-512 px) gives only 55 %
# of the training boxes (7-76 px, median 50) an anchor at the RPN's positive IoU 0.7 (two scales: 95 %); and AdamW
# lr 3e-4 (wd 0.05) instead of SGD lr 0.005: after 200 iterations bbox / segm mAP 0.380 / 0.364 against SGD's
# 0.267 / 0.268 (AdamW 1e-4: 0.305 / 0.283; 6e-4: 0.287 / 0.316). At test time, soft-NMS (mmcv's, linear, IoU
# 0.5) instead of the base's NMS: +1.3 / +0.6 points from the same weights ("Test-time settings"). With SGD and one
# anchor scale the demo reached 0.515 / 0.523 and 0.548 / 0.544 (2026-11-26, -29); with the three changes, the
# figures of the README's demo table (README.md, "Two commands"), still short of issue 25's 0.75 / 0.70.
# Sized to train on a CPU in minutes. The backbone starts from the toy classifier
# (configs/toy/fishnet99_1xb16_toy-cls.py), loaded with prefix='backbone.' exactly as the COCO configs
# load converted ImageNet weights; set its path with
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/toy_cls/epoch_20.pth
# or train from scratch with --cfg-options model.backbone.init_cfg=None.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', '../_base_/default_runtime_fishnet.py']

data_root = 'data/toy_coco/'
classes = ('circle', 'square', 'triangle')
metainfo = dict(classes=classes, palette=[(220, 20, 60), (0, 128, 255), (0, 200, 0)])
image_size = (128, 128)

model = dict(
    backbone=dict(
        _delete_=True,
        type='FishNet',
        arch='99',
        out_indices=(7, 8, 9, 10),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='work_dirs/toy_cls/epoch_20.pth', prefix='backbone.')),
    neck=dict(in_channels=[320, 832, 1600, 2112], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128, anchor_generator=dict(scales=[8, 11.3])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(in_channels=128, conv_out_channels=128, num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(nms=dict(type='soft_nms'), max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
train_dataloader = dict(
    **loader,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    **loader,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_epochs = 20
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16, 19], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=3e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='SafeCheckpointHook', interval=5, max_keep_ckpts=1))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=4)
