"""tools/analysis_tools/seed_spread.py, which measures the demo spread of docs/development.md: it must read the
validation at the end of training and compute the spread the docs quote. No training here."""
import importlib.util
import json
import os

import pytest

from helpers import ROOT


@pytest.fixture(scope='module')
def seed_spread():
    path = os.path.join(ROOT, 'tools', 'analysis_tools', 'seed_spread.py')
    spec = importlib.util.spec_from_file_location('seed_spread', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_scalars(run_dir, records):
    os.makedirs(run_dir / 'vis_data')
    with open(run_dir / 'vis_data' / 'scalars.json', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in records)


def test_reads_the_last_validation_of_the_newest_run(tmp_path, seed_spread):
    # Catches reading an intermediate validation (the first or best epoch instead of the end of
    # training), a training-loss line, or an older run left in the same work dir.
    write_scalars(tmp_path / '20260101_000000', [{'accuracy/top1': 11.0, 'step': 5}])
    write_scalars(tmp_path / '20260102_000000', [
        {'loss': 0.5, 'step': 10},
        {'accuracy/top1': 60.0, 'step': 2},
        {'loss': 0.2, 'step': 20},
        {'accuracy/top1': 90.0, 'step': 4},
        {'loss': 0.1, 'step': 30},
    ])
    assert seed_spread.last_metrics(str(tmp_path), ['accuracy/top1']) == {'accuracy/top1': 90.0}
    assert seed_spread.last_metrics(str(tmp_path), ['coco/bbox_mAP']) is None


def test_spread_is_sample_std_and_range(seed_spread):
    # Catches the population std (divides by n: 0.816 here) or a range taken as max - mean.
    # Expected values by hand: mean 2, sample variance ((1 + 0 + 1) / 2) = 1, range 3 - 1 = 2.
    s = seed_spread.spread([1.0, 2.0, 3.0])
    assert s['mean'] == pytest.approx(2.0) and s['std'] == pytest.approx(1.0)
    assert (s['min'], s['max'], s['range']) == (1.0, 3.0, 2.0)


def test_default_metrics_are_the_keys_each_toy_config_validates_with(seed_spread):
    # Catches: a demo config with no default metric (the toy UPerNet refused without --metrics) and a default
    # key its library never writes (every run would end in "no validation found"). The keys come from the
    # libraries' own metrics: mmseg's IoUMetric on a 2-pixel prediction, mmpretrain's Accuracy on one sample;
    # mmdet's CocoMetric prefixes 'coco/' to '<metric>_mAP' (mmdet/evaluation/metrics/coco_metric.py).
    import torch
    from mmengine.config import Config
    from mmpretrain.evaluation import Accuracy
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData

    sample = SegDataSample(pred_sem_seg=PixelData(data=torch.tensor([[[0, 1]]])),
                           gt_sem_seg=PixelData(data=torch.tensor([[[0, 1]]])))
    iou = IoUMetric(iou_metrics=['mIoU'])
    iou.dataset_meta = dict(classes=('a', 'b'))
    iou.process([], [sample.to_dict()])
    accuracy = Accuracy(topk=(1, ))
    accuracy.process([], [dict(pred_score=torch.tensor([0.9, 0.1]), gt_label=torch.tensor([0]))])
    written = {'mmseg': set(iou.evaluate(1)),
               'mmpretrain': set(accuracy.evaluate(1)),
               'mmdet': {f'coco/{m}_mAP' for m in ('bbox', 'segm')}}
    for name in ('fishnet99_1xb16_toy-cls.py', 'mask_rcnn_fishnet99_fpn_toy-coco.py', 'upernet_fishnet99_toy-seg.py'):
        scope = Config.fromfile(os.path.join(ROOT, 'configs', 'toy', name)).default_scope
        keys = seed_spread.DEFAULT_METRICS.get(scope)
        assert keys and set(keys) <= written[scope], (name, keys)
