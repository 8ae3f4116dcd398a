# As upernet_fishnet150_4xb4-160k_ade20k-512x512.py with FishNet-201 (same output widths, other block counts).
_base_ = './upernet_fishnet150_4xb4-160k_ade20k-512x512.py'

pretrained = 'checkpoints/fishnet201_in1k.pth'
model = dict(backbone=dict(arch='201', init_cfg=dict(checkpoint=pretrained)))
