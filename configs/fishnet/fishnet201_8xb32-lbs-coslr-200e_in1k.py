# FishNet-201 with the authors' longer recipe for their best weights (see
# fishnet150_8xb32-lbs-coslr-200e_in1k.py): cosine learning rate over 200 epochs and label smoothing 0.1.
_base_ = './fishnet150_8xb32-lbs-coslr-200e_in1k.py'

# Their FishNet-201 weights from this recipe (fishnet201_ckpt_welltrain.tar) have a bare conv as tail1's first
# shortcut, unlike the released model definition: bare_first_shortcut=True builds the network they trained.
model = dict(backbone=dict(arch='201', bare_first_shortcut=True))
