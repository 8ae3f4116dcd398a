#!/usr/bin/env bash
# The main job on bundled data, from a fresh clone:
#   bash tools/run_demo.sh
# 1. sets everything up (tools/setup_env.sh, idempotent);
# 2. generates the toy datasets into data/ (deterministic);
# 3. trains the toy FishNet-99 classifier (configs/toy/fishnet99_1xb16_toy-cls.py) and reports top-1;
# 4. trains the toy Mask R-CNN FishNet-99 FPN from it (configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py);
# 5. evaluates it with COCO bbox/segm mAP (pycocotools via mmdet's CocoMetric), draws its predictions
#    on the val images with mmdet's visualizer and counts the boxes a picture of tools/image_demo.py draws
#    (score >= 0.3, one box per object; tools/analysis_tools/drawn_boxes.py: how many are right, how many
#    pictures all right);
# 6. trains the toy UPerNet FishNet-99 from the same classifier (configs/toy/upernet_fishnet99_toy-seg.py),
#    evaluates it with mmseg's IoUMetric (mIoU, per-class IoU) and draws its masks with mmseg's visualizer.
# 7. draws the training curves of every run (loss, validation metrics) as PNGs next to their logs
#    (tools/analysis_tools/plot_curves.py) and runs tools/image_demo.py with the toy detector on the bundled
#    picture demo/shapes.png (a toy-COCO image, byte for byte: make_toy_coco(DIR, num_train=0, num_val=4,
#    size=(192, 256), seed=7), DIR/val/val_00004.png: two squares and a circle).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
PY="${MMFISHNET_VENV:-$ROOT/.venv}/bin/python"
WORK="${WORK_DIR:-work_dirs}"

"$PY" tools/data/make_toy_data.py --out-dir data

"$PY" tools/train.py configs/toy/fishnet99_1xb16_toy-cls.py --work-dir "$WORK/toy_cls"
CLS_CKPT=$(cat "$WORK/toy_cls/last_checkpoint")
"$PY" tools/test.py configs/toy/fishnet99_1xb16_toy-cls.py "$CLS_CKPT" --work-dir "$WORK/toy_cls"
"$PY" tools/analysis_tools/plot_curves.py "$WORK/toy_cls"

"$PY" tools/train.py configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py --work-dir "$WORK/toy_mask_rcnn" \
    --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT"
DET_CKPT=$(cat "$WORK/toy_mask_rcnn/last_checkpoint")
"$PY" tools/test.py configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py "$DET_CKPT" \
    --work-dir "$WORK/toy_mask_rcnn" --show-dir vis --out "$WORK/toy_mask_rcnn/val_results.pkl"
"$PY" tools/analysis_tools/drawn_boxes.py configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py \
    "$WORK/toy_mask_rcnn/val_results.pkl" --out "$WORK/toy_mask_rcnn/drawn_boxes.json"
"$PY" tools/analysis_tools/plot_curves.py "$WORK/toy_mask_rcnn"

# Semantic segmentation: UPerNet FishNet-99 on the toy label maps (data/toy_seg), its backbone from the same
# classifier; mIoU and per-class IoU with mmseg's IoUMetric, predicted masks drawn over the val images.
"$PY" tools/train.py configs/toy/upernet_fishnet99_toy-seg.py --work-dir "$WORK/toy_seg" \
    --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT"
SEG_CKPT=$(cat "$WORK/toy_seg/last_checkpoint")
"$PY" tools/test.py configs/toy/upernet_fishnet99_toy-seg.py "$SEG_CKPT" --work-dir "$WORK/toy_seg" --show-dir vis
"$PY" tools/analysis_tools/plot_curves.py "$WORK/toy_seg"

"$PY" tools/image_demo.py demo/shapes.png configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py "$DET_CKPT" \
    --out-dir "$WORK/image_demo"

VIS=$(ls -td "$WORK"/toy_mask_rcnn/*/vis 2>/dev/null | head -n 1)
CURVES=$(ls -d "$WORK"/toy_cls/*/curves "$WORK"/toy_mask_rcnn/*/curves "$WORK"/toy_seg/*/curves 2>/dev/null | tr '\n' ' ')
cat <<MSG

Done. Outputs:
  toy classifier:   $CLS_CKPT (logs and top-1 in $WORK/toy_cls/)
  toy Mask R-CNN:   $DET_CKPT (logs and COCO metrics in $WORK/toy_mask_rcnn/)
  predictions drawn on the val images: ${VIS:-$WORK/toy_mask_rcnn/<timestamp>/vis}/
  the boxes a picture draws over the val images, counted: $WORK/toy_mask_rcnn/drawn_boxes.json
  toy UPerNet:      $SEG_CKPT (logs, mIoU and per-class IoU in $WORK/toy_seg/; masks drawn in $WORK/toy_seg/vis/vis_data/vis_image/)
  training curves (PNG): ${CURVES:-$WORK/toy_*/<timestamp>/curves/}
  the toy detector on the bundled picture demo/shapes.png: $WORK/image_demo/vis/shapes.png
    (its predictions as JSON: $WORK/image_demo/preds/shapes.json)
MSG
