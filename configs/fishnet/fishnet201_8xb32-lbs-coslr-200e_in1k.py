# FishNet-201 with the authors' longer recipe for their best weights (see
# fishnet150_8xb32-lbs-coslr-200e_in1k.py): cosine learning rate over 200 epochs and label smoothing 0.1.
_base_ = './fishnet150_8xb32-lbs-coslr-200e_in1k.py'

model = dict(backbone=dict(arch='201'))
