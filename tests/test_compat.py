"""Workarounds for packages newer than the pinned OpenMMLab releases (mmfishnet/utils/compat.py)."""
import subprocess
import sys

from helpers import ROOT

BUILD_CLASSIFIER = f"""
import sys
sys.path.insert(0, {ROOT!r})
import mmfishnet
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
with DefaultScope.overwrite_default_scope('mmpretrain'):
    model = MODELS.build(dict(type='ImageClassifier', backbone=dict(type='FishNet', arch='99', out_indices=(11, )),
                              neck=dict(type='GlobalAveragePooling'),
                              head=dict(type='LinearClsHead', num_classes=4, in_channels=1056)))
print('built', type(model).__name__)
"""


def fake_transformers_5(root):
    """An installed 'transformers 5.0.0' whose submodules mmpretrain 1.2.0 imports are gone, as in
    transformers 5 (the GPU image's 5.17 failed the same way)."""
    (root / 'transformers').mkdir()
    (root / 'transformers' / '__init__.py').write_text("__version__ = '5.0.0'\n")
    info = root / 'transformers-5.0.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: transformers\nVersion: 5.0.0\n')
    (info / 'RECORD').write_text('')


def test_mmpretrain_builds_beside_transformers_5(tmp_path):
    """Bug (found on the H200 image, which ships transformers 5.17): mmpretrain 1.2.0 enables its multimodal
    models whenever transformers >= 4.28 is installed; their modules cannot import transformers 5 and the
    first build of any mmpretrain model, FishNet classifiers included, died with 'TypeError: NoneType takes
    no arguments'. With mmfishnet imported first (custom_imports does that) the classifier builds."""
    fake_transformers_5(tmp_path)
    env = {'PYTHONPATH': str(tmp_path)}
    import os
    proc = subprocess.run([sys.executable, '-c', BUILD_CLASSIFIER], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'built ImageClassifier' in proc.stdout
