# The FishNet-150 backbone in mmseg's UPerNet: what the configs in configs/upernet/ put in place of the
# ResNet-50 of mmseg's own UPerNet baselines (they inherit those and change nothing else of the model).
# Norm layers, frozen stages and norm_eval follow mmseg's ResNet backbone there (SyncBN, all stages
# trained, BN statistics updated), not mmdet's (frozen stem and tail1, norm_eval=True).
pretrained = 'checkpoints/fishnet150_in1k.pth'  # tools/model_converters/fishnet_to_mmfishnet.py output
fishnet_upernet = dict(
    pretrained=None,  # the base names ResNet's open-mmlab://resnet50_v1c here; FishNet loads via init_cfg
    # Inference is 'whole' as in the baseline: ADE20K images resized to a 512 short side have any long
    # side, and FishNet needs sides divisible by 32, so test images are padded (the padding is cropped
    # from the prediction before resizing it back). Training crops are already 512x512 / 512x1024.
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),
    backbone=dict(
        _delete_=True,  # nothing of the base's ResNetV1c leaks in
        type='FishNet',
        arch='150',
        # Decode head (UPerHead, in_index 0-3): body3 320@4, head1 832@8, head2 1600@16, head3 2112@32,
        # the detection backbone's outputs. They take ResNet's four stride-4..32 levels' places in
        # UPerNet's FPN, and the stride-4 one is what FishNet is for: body3 is the tail's stride-4
        # features refined by the up-sampling body with the deep semantics of the bridge, so the
        # finest level UPerNet fuses is no longer a shallow one (ResNet's layer1). The head stages that
        # follow concatenate the body's features again at strides 8-32; the score stage (11) is the
        # classifier's and is not built.
        # Auxiliary head (FCNHead, in_index 2): head2 1600@16, the same place as ResNet's layer3 (stride
        # 16, the level before the last), so the baseline's auxiliary head and its 0.4 loss weight apply
        # unchanged: deep supervision one stage before the last, at the resolution it was tuned for.
        out_indices=(7, 8, 9, 10),
        frozen_stages=-1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[320, 832, 1600, 2112]),
    auxiliary_head=dict(in_channels=1600))
