# UPerNet with a FishNet-150 backbone on ADE20K, mmseg's ResNet-50 UPerNet baseline otherwise: 512x512
# crops, 160k iterations, SGD lr 0.01 (poly) for 16 images per iteration = 4 GPUs x 4 images (other totals:
# scale lr linearly, or --auto-scale-lr), FCN auxiliary head with loss weight 0.4, whole-image inference.
# Which FishNet outputs feed the two heads, and why: configs/_base_/fishnet150_upernet.py.
#
#   python tools/train.py configs/upernet/upernet_fishnet150_4xb4-160k_ade20k-512x512.py        # one machine
#   bash tools/dist_train.sh configs/upernet/upernet_fishnet150_4xb4-160k_ade20k-512x512.py 4   # 4 GPUs
#
# Needs ADE20K at data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}/ and the
# converted ImageNet weights at checkpoints/fishnet150_in1k.pth (docs/segmentation.md).
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py', '../_base_/fishnet150_upernet.py',
          '../_base_/default_runtime_fishnet.py']

model = _base_.fishnet_upernet

# safe checkpoints (configs/_base_/default_runtime_fishnet.py adds the other hooks)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
# a resume starts at the next sample without loading the done iterations' data, and continues every random
# augmentation exactly, with mmseg's persistent workers (docs/fault_tolerance.md)
train_dataloader = dict(sampler=dict(type='ResumableInfiniteSampler'))
train_cfg = dict(type='ResumableIterBasedTrainLoop')
auto_scale_lr = dict(enable=False, base_batch_size=16)
