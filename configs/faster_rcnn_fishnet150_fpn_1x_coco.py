# Faster R-CNN with a FishNet-150 backbone and FPN, mmdet's 1x COCO schedule (16 images per iteration =
# 8 GPUs x 2 images). Backbone and data as in configs/mask_rcnn_fishnet150_fpn_1x_coco.py.
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', './_base_/fishnet150_fpn.py',
    './_base_/default_runtime_fishnet.py'
]

model = dict(backbone=_base_.fishnet_backbone, neck=dict(in_channels=_base_.fishnet_fpn_in_channels))

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
# resumes in the middle of an epoch, from the latest checkpoint (docs/fault_tolerance.md)
train_cfg = dict(type='ResumableEpochBasedTrainLoop')
