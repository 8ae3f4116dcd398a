# As faster_rcnn_fishnet150_fpn_1x_coco.py with FishNet-99 (same output widths, other block counts).
_base_ = './faster_rcnn_fishnet150_fpn_1x_coco.py'

pretrained = 'checkpoints/fishnet99_in1k.pth'
model = dict(backbone=dict(arch='99', init_cfg=dict(checkpoint=pretrained)))
