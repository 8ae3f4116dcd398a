"""Classification end to end through tools/train.py and tools/test.py, and converted official
checkpoints in the ImageNet configs."""
import argparse
import os
from types import SimpleNamespace

import mmcv
import mmengine
import pytest
import torch
from mmengine.config import Config

from golden import SEEDS, assert_matches_authors, golden_input, golden_weights
from helpers import ROOT, printed_metrics, run_tool, tiny_cls_config


@pytest.fixture(scope='module')
def trained(tmp_path_factory, cls_data):
    """Two epochs of the tiny classifier through tools/train.py (a checkpoint per epoch), then tools/test.py
    on the last one with --out and --show-dir: the config, the work dirs, the metrics printed and the
    predictions dumped."""
    tmp = tmp_path_factory.mktemp('cls_train')
    cfg = tiny_cls_config(tmp, cls_data, epochs=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp / 'work'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp / 'work' / 'last_checkpoint').read_text().strip().endswith('epoch_2.pth')
    out = tmp / 'preds.pkl'
    metrics = printed_metrics(run_tool('tools/test.py', cfg, str(tmp / 'work' / 'epoch_2.pth'), '--work-dir',
                                       str(tmp / 'test'), '--out', str(out), '--show-dir', 'vis'))
    return SimpleNamespace(cfg=cfg, work=tmp / 'work', test_dir=tmp / 'test', metrics=metrics,
                           preds=mmengine.load(str(out)))


def test_test_tool_evaluates_the_checkpoint_and_dumps_predictions(trained):
    """Catches tools/test.py evaluating other weights than the checkpoint given (e.g. the config's own
    init), another split, a top-1 that is not the predictions' accuracy, and a broken --out: the dumped
    scores must be those of the checkpoint's model computed here on the val images, and the printed top-1
    their accuracy against the labels."""
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import MODELS
    state = torch.load(trained.work / 'epoch_2.pth', map_location='cpu')
    assert state['meta']['epoch'] == 2  # the Runner's checkpoint loads under torch's weights_only default
    preds = trained.preds
    assert len(preds) == 8  # 4 classes x 2 val images
    init_default_scope('mmpretrain')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(trained.cfg).model)
    model.load_state_dict(state['state_dict'], strict=True)
    model.eval()
    images = [torch.from_numpy(mmcv.imread(p['img_path'])).permute(2, 0, 1) for p in preds]
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=None), False)
        scores = model(data['inputs'], mode='tensor').softmax(dim=1)
    for pred, score in zip(preds, scores):
        torch.testing.assert_close(pred['pred_score'], score, rtol=1e-4, atol=1e-5)
    correct = [int(p['pred_score'].argmax()) == int(p['gt_label']) for p in preds]
    assert trained.metrics['accuracy/top1'] == pytest.approx(100 * sum(correct) / len(correct))


def test_show_dir_draws_every_test_image(trained, cls_data):
    """Bug (issue 18): tools/test.py --show-dir on an mmpretrain config drew one image in 5000 (mmpretrain's
    VisualizationHook defaults to interval=5000, which the tool left alone), and into the current directory
    (the hook takes out_dir as given): one picture per val image, in <work_dir>/<show_dir>."""
    val_images = [f for _, _, files in os.walk(cls_data / 'val') for f in files if f.endswith('.png')]
    drawn = [f for _, _, files in os.walk(trained.test_dir / 'vis') for f in files if f.endswith('.png')]
    assert len(val_images) == 8 and len(drawn) == len(val_images)  # cls_data: 4 classes x 2 val images


def test_resume_from_a_named_checkpoint(tmp_path, trained):
    """Catches ``--resume CKPT`` ignoring CKPT (restarting from scratch, or resuming from the newest
    checkpoint): resumed from epoch_1.pth in a new work dir, epoch 2 is trained again and ends with the
    same weights as the uninterrupted run (RandomStateHook restores the random stream)."""
    cfg, work = trained.cfg, trained.work
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'resumed'), '--resume',
                    str(work / 'epoch_1.pth'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 6' in proc.stdout + proc.stderr
    assert not (tmp_path / 'resumed' / 'epoch_1.pth').exists()
    a = torch.load(work / 'epoch_2.pth', map_location='cpu')['state_dict']
    b = torch.load(tmp_path / 'resumed' / 'epoch_2.pth', map_location='cpu')['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_trusted_checkpoint_with_python_objects_is_evaluated(tmp_path, trained):
    """Catches --trust-checkpoint not reaching every load of the file (tools/test.py's own check and
    mmengine's load_from): a checkpoint that also holds a Python object (refused without the flag, see
    tests/test_bad_input.py) is evaluated with it, to the same metrics as the plain checkpoint."""
    cfg, work = trained.cfg, trained.work
    state = torch.load(work / 'epoch_2.pth', map_location='cpu')
    state['args'] = argparse.Namespace(lr=0.1)
    torch.save(state, tmp_path / 'with_namespace.pth')
    trusted = printed_metrics(run_tool('tools/test.py', cfg, str(tmp_path / 'with_namespace.pth'), '--work-dir',
                                       str(tmp_path), '--trust-checkpoint'))
    assert trusted == trained.metrics


@pytest.mark.parametrize('arch', ['99', '150', '201'])
def test_converted_official_checkpoint_in_the_imagenet_config(tmp_path, arch):
    """Catches a converter command line or an ImageNet config that does not give the authors' classifier:
    the file tools/model_converters/fishnet_to_mmfishnet.py writes from an official one loads strictly
    into configs/fishnet/fishnet{arch}_8xb32_in1k.py's model, which has the authors' parameter count and,
    for the golden weights (99, 150; tests/data/README.md), the authors' logits."""
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.registry import MODELS
    from test_converter import fake_official
    src, dst = tmp_path / 'src.tar', tmp_path / 'dst.pth'
    if arch in SEEDS:
        official = {f'module.{k}': v for k, v in golden_weights(arch).items()}
    else:
        official = fake_official(f'fishnet{arch}')
    torch.save({'state_dict': official}, src)
    proc = run_tool('tools/model_converters/fishnet_to_mmfishnet.py', str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    cfg = Config.fromfile(os.path.join(ROOT, f'configs/fishnet/fishnet{arch}_8xb32_in1k.py'))
    init_default_scope('mmpretrain')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == \
        {'99': 16_628_904, '150': 24_959_400, '201': 44_584_552}[arch]
    model.double().eval()
    model.load_state_dict(torch.load(dst, weights_only=True)['state_dict'], strict=True)
    if arch in SEEDS:
        with torch.no_grad():
            assert_matches_authors('logits', model(golden_input(), mode='tensor'), arch)
