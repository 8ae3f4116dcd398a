# As upernet_fishnet150_4xb2-80k_cityscapes-512x1024.py with FishNet-201 (same output widths, other block counts).
_base_ = './upernet_fishnet150_4xb2-80k_cityscapes-512x1024.py'

pretrained = 'checkpoints/fishnet201_in1k.pth'
# bare_first_shortcut: the network of the converted FishNet-201 weights (see FishNet's docstring)
model = dict(backbone=dict(arch='201', bare_first_shortcut=True, init_cfg=dict(checkpoint=pretrained)))
