# Mask R-CNN with a FishNet-150 backbone and FPN, mmdet's 1x COCO schedule: 12 epochs, lr 0.02 for
# 16 images per iteration = 8 GPUs x 2 images (other totals: scale lr linearly, or --auto-scale-lr).
# Everything but the backbone and FPN's input widths is mmdet's ResNet-50 baseline.
#
#   python tools/train.py configs/mask_rcnn_fishnet150_fpn_1x_coco.py            # one machine
#   bash tools/dist_train.sh configs/mask_rcnn_fishnet150_fpn_1x_coco.py 8       # 8 GPUs
#
# Needs COCO 2017 at data/coco/ and the converted ImageNet weights at checkpoints/fishnet150_in1k.pth:
#   python tools/model_converters/fishnet_to_mmfishnet.py fishnet150_ckpt.tar checkpoints/fishnet150_in1k.pth
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', './_base_/fishnet150_fpn.py',
    './_base_/default_runtime_fishnet.py'
]

model = dict(backbone=_base_.fishnet_backbone, neck=dict(in_channels=_base_.fishnet_fpn_in_channels))

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
# resumes in the middle of an epoch, from the latest checkpoint (docs/fault_tolerance.md)
train_cfg = dict(type='ResumableEpochBasedTrainLoop')
