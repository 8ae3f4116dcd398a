# As mask_rcnn_fishnet150_fpn_1x_coco.py with FishNet-201 (same output widths, other block counts).
_base_ = './mask_rcnn_fishnet150_fpn_1x_coco.py'

pretrained = 'checkpoints/fishnet201_in1k.pth'
# bare_first_shortcut: the network of the converted FishNet-201 weights (see FishNet's docstring)
model = dict(backbone=dict(arch='201', bare_first_shortcut=True, init_cfg=dict(checkpoint=pretrained)))
