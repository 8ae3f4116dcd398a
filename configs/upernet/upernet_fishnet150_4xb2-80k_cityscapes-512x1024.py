# UPerNet with a FishNet-150 backbone on Cityscapes, mmseg's ResNet-50 UPerNet baseline otherwise: 512x1024
# crops, 80k iterations, SGD lr 0.01 (poly) for 8 images per iteration = 4 GPUs x 2 images (other totals:
# scale lr linearly, or --auto-scale-lr), FCN auxiliary head with loss weight 0.4, whole-image inference
# at 2048x1024. Which FishNet outputs feed the two heads, and why: configs/_base_/fishnet150_upernet.py.
#
#   bash tools/dist_train.sh configs/upernet/upernet_fishnet150_4xb2-80k_cityscapes-512x1024.py 4
#
# Needs Cityscapes at data/cityscapes/{leftImg8bit,gtFine}/{train,val}/ with the *_labelTrainIds.png maps
# (docs/segmentation.md) and the converted weights at checkpoints/fishnet150_in1k.pth.
_base_ = ['mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py', '../_base_/fishnet150_upernet.py',
          '../_base_/default_runtime_fishnet.py']

model = _base_.fishnet_upernet

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
# a resume starts at the next sample without loading the done iterations' data, and continues every random
# augmentation exactly, with mmseg's persistent workers (docs/fault_tolerance.md)
train_dataloader = dict(sampler=dict(type='ResumableInfiniteSampler'))
train_cfg = dict(type='ResumableIterBasedTrainLoop')
auto_scale_lr = dict(enable=False, base_batch_size=8)
