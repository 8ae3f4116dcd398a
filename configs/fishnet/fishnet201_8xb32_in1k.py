# FishNet-201 on ImageNet-1k, the paper's recipe (see fishnet99_8xb32_in1k.py).
_base_ = './fishnet99_8xb32_in1k.py'

model = dict(backbone=dict(arch='201'))
