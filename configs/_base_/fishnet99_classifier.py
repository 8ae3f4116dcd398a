# The FishNet-99 ImageNet classifier (the authors' layout: score feature, global pooling, linear layer),
# shared by the classification configs; they change arch, stem_stride or num_classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='FishNet', arch='99', out_indices=(11, )),  # the 1056-channel score feature
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1056,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
