# As upernet_fishnet150_4xb2-80k_cityscapes-512x1024.py with FishNet-99 (same output widths, other block counts).
_base_ = './upernet_fishnet150_4xb2-80k_cityscapes-512x1024.py'

pretrained = 'checkpoints/fishnet99_in1k.pth'
model = dict(backbone=dict(arch='99', init_cfg=dict(checkpoint=pretrained)))
