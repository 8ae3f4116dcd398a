# The FishNet-150 backbone as an FPN detector uses it; inherited by the detection configs beside
# mmdet's own bases. frozen_stages/norm_eval as in mmdet's ResNet baselines.
pretrained = 'checkpoints/fishnet150_in1k.pth'  # tools/model_converters/fishnet_to_mmfishnet.py output
fishnet_backbone = dict(
    _delete_=True,  # nothing of the base's ResNet leaks in
    type='FishNet',
    arch='150',
    out_indices=(7, 8, 9, 10),  # body3 320@4, head1 832@8, head2 1600@16, head3 2112@32
    frozen_stages=1,  # stem and tail1, as ResNet's stem and layer1
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.'))
fishnet_fpn_in_channels = [320, 832, 1600, 2112]
