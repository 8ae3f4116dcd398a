"""The model index: model-index.yml and the metafiles it imports load with modelindex (mmpretrain's loader)
without errors, every config they name exists and matches the stated schedule, the parameters and FLOPs they
state are what tools/analysis_tools/get_flops.py computes for that config at the stated input, and the
README's model-zoo table is the one generated from them."""
import os
import sys

import pytest
from mmengine.config import Config

from helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tools', 'misc'))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'analysis_tools'))

import get_flops  # noqa: E402
import model_zoo_table  # noqa: E402

MODELS = model_zoo_table.load_models(os.path.join(ROOT, 'model-index.yml'))


def test_every_model_names_an_existing_config_and_its_schedule():
    """Catches: a metafile entry left behind when a config is renamed or removed, a duplicated name, a
    family missing from the index (classification, detection, segmentation), and an Epochs or Iterations
    figure that is not the config's."""
    names = [m['Name'] for m in MODELS]
    assert len(names) == len(set(names)) and len(names) >= 18
    tasks = {t for m in MODELS for t in model_zoo_table.model_tasks(m)}
    assert {'Image Classification', 'Object Detection', 'Semantic Segmentation'} <= tasks, tasks
    for m in MODELS:
        path = os.path.join(ROOT, m['Config'])
        assert os.path.isfile(path), f"{m['Name']}: {m['Config']} does not exist"
        assert os.path.splitext(os.path.basename(path))[0] == m['Name']
        cfg = Config.fromfile(path)
        schedule = {k: m['Metadata'][k] for k in ('Epochs', 'Iterations') if k in m['Metadata']}
        assert schedule == ({'Epochs': cfg.train_cfg.max_epochs} if 'max_epochs' in cfg.train_cfg
                            else {'Iterations': cfg.train_cfg.max_iters}), m['Name']


def test_imagenet_models_carry_the_authors_figures():
    """Catches: an ImageNet model without the authors' released top-1/top-5, or with weights listed for a
    recipe whose weights the authors never released (their README: FishNet-201 without tricks)."""
    imagenet = [m for m in MODELS if m['Config'].endswith('_in1k.py')]
    assert len(imagenet) == 5
    for m in imagenet:
        source = m['Converted From']
        metrics = source['Results'][0]['Metrics']
        assert 70 < metrics['Top 1 Accuracy'] < metrics['Top 5 Accuracy'] < 100
        assert source['Code'].startswith('https://github.com/kevin-ssy/FishNet/')
        assert bool(source['Weights']) == (m['Name'] != 'fishnet201_8xb32_in1k')


def _shape(model):
    h, w = model['Metadata']['Input Size'].split('x')
    return int(h), int(w)


_MEASURED = {}  # the same network at the same input is measured once


@pytest.mark.parametrize('model', MODELS, ids=lambda m: m['Name'])
def test_params_and_flops_are_what_get_flops_computes(model):
    """Catches: figures typed by hand or left stale after a change of the architecture, the configs or the
    counter (every entry is recomputed with get_flops.py's own function at its stated input)."""
    measured = get_flops.measure_config(os.path.join(ROOT, model['Config']), _shape(model), _MEASURED)
    meta = model['Metadata']
    if measured['task'] == 'classification':
        assert (meta['Parameters'], meta['FLOPs']) == (measured['params'], measured['flops'])
    else:
        assert (meta['Backbone Parameters'], meta['Backbone FLOPs'], meta['Parameters']) == (
            measured['params'], measured['flops'], measured['model_params'])


def test_readme_model_zoo_table_is_generated_from_the_index():
    """Catches: the README's model-zoo table edited by hand or not regenerated after a metafile change."""
    assert model_zoo_table.readme_table(os.path.join(ROOT, 'README.md')) == model_zoo_table.table(MODELS)
