# FishNet-201 with the authors' longer recipe for their best weights: cosine learning rate over 200
# epochs and label smoothing 0.1; otherwise as fishnet201_8xb32_in1k.py.
_base_ = './fishnet201_8xb32_in1k.py'

model = dict(head=dict(loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0)))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200)
train_cfg = dict(max_epochs=200)
