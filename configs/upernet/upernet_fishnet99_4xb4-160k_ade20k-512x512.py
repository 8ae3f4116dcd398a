# As upernet_fishnet150_4xb4-160k_ade20k-512x512.py with FishNet-99 (same output widths, other block counts).
_base_ = './upernet_fishnet150_4xb4-160k_ade20k-512x512.py'

pretrained = 'checkpoints/fishnet99_in1k.pth'
model = dict(backbone=dict(arch='99', init_cfg=dict(checkpoint=pretrained)))
