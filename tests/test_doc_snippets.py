"""Every Python block of README.md and docs/*.md is built or run where it stands, and the guides that are
worked examples run end to end with exactly their commands.

A ```python block must follow a marker line that says what it is:

- ``<!-- snippet: config-add BASE -->``: lines a user adds to a config whose ``_base_`` is BASE (an mmdet,
  mmpretrain or mmseg config such as ``'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'``, or a config of
  this repository). The test writes ``_base_ = BASE`` and the block to a file, loads it with mmengine, builds
  the model with the registry of the config's ``default_scope`` on the CPU and runs it on a small image.
- ``<!-- snippet: config-file PATH -->``: a whole config file the page tells the reader to write at PATH
  (relative to the repository's root). Written there in a sandbox (with this repository's ``configs/`` and
  ``tools/``) and built the same way; the guide tests below also train with it.
- ``<!-- snippet: python -->``: Python code, run as it stands (a ``torch.nn.Module`` it leaves in ``model``
  also runs on a small image).
- ``<!-- snippet: run ... -->``: code that needs files the page names; a test of its own runs it
  (``RUN_BLOCKS``).

A bash block after ``<!-- commands: ... -->`` is a guide's worked example: its test runs those command lines.
Command lines elsewhere are checked statically by tests/test_docs.py.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest
import torch

from helpers import ROOT, cpu_tool_env, printed_metrics
from test_docs import DOCS, logical_lines

MARK = re.compile(r'^<!-- snippet: (\S+)\s*(.*?)\s*-->$')
KINDS = ('config-add', 'config-file', 'python', 'run')
# The pages whose ``run`` blocks a test of this file runs.
RUN_BLOCKS = {'docs/inference_python.md': 'test_inference_python_snippet_runs'}


# --- reading the markdown ---------------------------------------------------------------------------------

def fenced_blocks(text):
    """Every fenced block as (first code line number, language, the line before the fence, code)."""
    lines, blocks, i = text.split('\n'), [], 0
    while i < len(lines):
        fence = re.match(r'^\s*(```|~~~)\s*([\w+-]*)\s*$', lines[i])
        if fence:
            j = i + 1
            while j < len(lines) and not re.match(r'^\s*(```|~~~)\s*$', lines[j]):
                j += 1
            before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), '')
            blocks.append((i + 2, fence.group(2).lower(), before, '\n'.join(lines[i + 1:j])))
            i = j
        i += 1
    return blocks


def python_snippets(text):
    """(line, kind, argument, code) of every Python block; kind None when its marker is missing or unknown."""
    found = []
    for line, lang, before, code in fenced_blocks(text):
        if lang in ('python', 'py'):
            mark = MARK.match(before)
            kind = mark.group(1) if mark and mark.group(1) in KINDS else None
            found.append((line, kind, mark.group(2) if mark else '', code))
    return found


def unmarked_problems(text):
    """Python blocks without a known marker, and Python-looking blocks without the python tag."""
    problems = [f'line {line}: a python block without a <!-- snippet: KIND --> marker (KIND: {", ".join(KINDS)})'
                for line, kind, _, _ in python_snippets(text) if kind is None]
    problems += [f'line {line}: a config without the python tag' for line, lang, _, code in fenced_blocks(text)
                 if lang == '' and re.search(r'^\w+ = dict\(', code, flags=re.M)]
    return problems


def all_snippets(kind):
    return [(doc, line, arg, code) for doc in DOCS
            for line, k, arg, code in python_snippets(open(os.path.join(ROOT, doc)).read()) if k == kind]


def guide_commands(text):
    """The command lines of the bash block after a ``<!-- commands: ... -->`` marker."""
    for line, lang, before, code in fenced_blocks(text):
        if before.startswith('<!-- commands:') and lang == 'bash':
            return [cmd for _, cmd in logical_lines(code.split('\n'), line) if cmd.strip()]
    raise AssertionError('no <!-- commands: --> bash block')


# --- building ---------------------------------------------------------------------------------------------

def sandbox(tmp_path):
    """A folder laid out as the repository's root for a reader: configs/, tools/, demo/, mmfishnet/ linked, and every
    config-file snippet of the docs written at its path."""
    for name in ('configs', 'tools', 'demo', 'mmfishnet'):  # tools/train.py reads mmfishnet/utils/ by path
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    for _, _, path, code in all_snippets('config-file'):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(code + '\n')
    return tmp_path


def build_and_run(cfg):
    """Build ``cfg.model`` with the registry of the config's default scope (no weights loaded) and run it on
    one small image in eval mode."""
    import importlib

    from mmengine.registry import DefaultScope, init_default_scope
    scope = cfg.get('default_scope')
    assert scope in ('mmdet', 'mmpretrain', 'mmseg'), f'default_scope {scope!r}'
    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = importlib.import_module(f'{scope}.registry').MODELS.build(cfg.model).eval()
    with torch.no_grad():
        if scope == 'mmdet':
            from mmdet.testing import demo_mm_inputs
            packed = demo_mm_inputs(1, [[3, 64, 96]], with_mask=bool(cfg.model.get('roi_head', {}).get('mask_head')))
            model(**model.data_preprocessor(packed, False), mode='predict')
        else:
            model(torch.rand(1, 3, 64, 64), mode='tensor')
    return model


def load_config_add(tmp_path, base, code):
    from mmengine.config import Config
    base = base.strip()
    if base.strip('\'"').startswith('configs/'):
        base = repr(os.path.join(ROOT, base.strip('\'"')))
    path = tmp_path / 'user_config.py'
    path.write_text(f'_base_ = {base}\n{code}\n')
    return Config.fromfile(str(path))


# --- the tests --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('doc', DOCS)
def test_every_python_block_says_how_it_is_built(doc):
    """Catches: a Python block added to the README or a page without saying in which setting it works (so no
    test builds it), and a config pasted into a block without the python tag (so no test sees it)."""
    problems = unmarked_problems(open(os.path.join(ROOT, doc)).read())
    assert not problems, f'{doc}:\n' + '\n'.join(problems)


def test_the_snippet_reader_sees_every_kind_and_a_missing_marker():
    """Catches: a reader that finds no blocks (a change of the fence syntax), or that lets an unmarked block or
    an untagged config through, which would pass every page."""
    text = ('<!-- snippet: python -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n\n'
            '<!-- snippet: config-add \'mmdet::x.py\' -->\n\n```python\nmodel = dict()\n```\n\n'
            '```\nmodel = dict(a=1)\n```\n')
    assert [(k, a) for _, k, a, _ in python_snippets(text)] == [
        ('python', ''), (None, ''), ('config-add', "'mmdet::x.py'")]
    assert [p.split(': ', 1)[1] for p in unmarked_problems(text)] == [
        'a python block without a <!-- snippet: KIND --> marker (KIND: config-add, config-file, python, run)',
        'a config without the python tag']
    assert {doc for doc, *_ in all_snippets('config-add')} >= {'README.md', 'docs/backbone.md'}


@pytest.mark.parametrize('doc,line,base,code', all_snippets('config-add'),
                         ids=[f'{d}:{line}' for d, line, *_ in all_snippets('config-add')])
def test_config_snippet_builds_in_the_config_its_page_names(tmp_path, doc, line, base, code):
    """Catches: a config snippet that fails where the page says to paste it: the README's in a config whose
    base is mmdet's Mask R-CNN R-50 (a FishNet without ``_delete_=True`` gets ResNet's ``depth``; a neck left
    with ResNet's widths fails on FishNet's outputs), each guide's in the base its page names."""
    build_and_run(load_config_add(tmp_path, base, code))


def test_the_readme_snippet_without_its_fixes_fails_as_the_issue_saw(tmp_path):
    """Catches: a snippet build that cannot fail, so that a stale README snippet would pass: the README's
    snippet without ``_delete_=True`` must raise FishNet's TypeError for ResNet's ``depth``, and without the
    neck's ``in_channels`` the forward must fail on the channels."""
    [(_, _, base, code)] = [s for s in all_snippets('config-add') if s[0] == 'README.md']
    assert '_delete_=True, ' in code and 'neck=dict(in_channels=[320, 832, 1600, 2112])' in code
    with pytest.raises(TypeError, match="unexpected keyword argument 'depth'"):
        build_and_run(load_config_add(tmp_path, base, code.replace('_delete_=True, ', '')))
    stale_neck = code.replace('neck=dict(in_channels=[320, 832, 1600, 2112])', 'neck=dict()')
    with pytest.raises(RuntimeError, match=r'expected input\[.*\] to have 256 channels'):  # docs/faq.md's symptom
        build_and_run(load_config_add(tmp_path, base, stale_neck))


def test_config_file_and_python_snippets_build(tmp_path, monkeypatch):
    """Catches: a whole config file a guide tells the reader to write (own dataset, fine-tuning) that no longer
    loads or builds against the configs it inherits, and a Python snippet that raises where it stands."""
    from mmengine.config import Config
    files = all_snippets('config-file')
    assert {p for _, _, p, _ in files} >= {'my_configs/mask_rcnn_fishnet99_fpn_1x_shapes.py',
                                           'my_configs/mask_rcnn_fishnet99_fpn_1x_shapes_ft.py'}
    root = sandbox(tmp_path)
    for _, _, path, _ in files:
        build_and_run(Config.fromfile(str(root / path)))
    monkeypatch.chdir(root)
    for doc, line, _, code in all_snippets('python'):
        namespace = {}
        exec(compile(code, f'{doc}:{line}', 'exec'), namespace)
        if isinstance(namespace.get('model'), torch.nn.Module):
            namespace['model'].eval()(torch.rand(1, 3, 64, 64))


def test_every_run_block_has_its_test():
    """Catches: a ``run`` block on a page no test runs (RUN_BLOCKS names the test of each page)."""
    pages = {doc for doc, *_ in all_snippets('run')}
    assert pages == set(RUN_BLOCKS)
    for test in RUN_BLOCKS.values():
        assert callable(globals()[test])


def test_inference_python_snippet_runs(tmp_path, monkeypatch):
    """Catches: the DetInferencer example of docs/inference_python.md failing as written (the toy detector
    config not loading through the inferencer, custom_imports not registering FishNet, the result keys it
    reads gone): run on a checkpoint of that config with random weights, as tools/train.py saves one."""
    from mmengine.config import Config
    [(doc, line, _, code)] = all_snippets('run')
    root = sandbox(tmp_path)
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py'))
    cfg.model.backbone.init_cfg = None
    model = build_and_run(cfg)
    ckpt = root / 'work_dirs' / 'toy_mask_rcnn' / 'epoch_20.pth'
    ckpt.parent.mkdir(parents=True)
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': dict(classes=('circle', 'square', 'triangle'))}}, ckpt)
    monkeypatch.chdir(root)
    namespace = {}
    exec(compile(code, f'{doc}:{line}', 'exec'), namespace)
    prediction = namespace['prediction']
    assert len(prediction['labels']) == len(prediction['scores']) == len(prediction['bboxes']) \
        == len(prediction['masks'])
    assert namespace['classes'] == ('circle', 'square', 'triangle')
    assert (root / 'outputs' / 'vis' / 'shapes.png').is_file()


# --- the worked examples ----------------------------------------------------------------------------------

def run_commands(root, commands):
    """Run documented command lines in ``root`` with this interpreter for ``python``; returns the processes."""
    procs = []
    for command in commands:
        argv = shlex.split(command, comments=True)
        assert argv[0] == 'python', command
        proc = subprocess.run([sys.executable, *argv[1:]], cwd=root, capture_output=True, text=True, timeout=600,
                              env=cpu_tool_env(PYTHONPATH=ROOT))
        assert proc.returncode == 0, f'{command}\n{proc.stderr[-3000:]}'
        procs.append(proc)
    return procs


@pytest.fixture(scope='module')
def own_dataset_run(tmp_path_factory):
    """docs/own_dataset.md's commands, run once in a sandbox."""
    root = sandbox(tmp_path_factory.mktemp('own_dataset'))
    commands = guide_commands(open(os.path.join(ROOT, 'docs', 'own_dataset.md')).read())
    return root, commands, run_commands(root, commands)


def test_own_dataset_guide_runs_end_to_end(own_dataset_run):
    """Catches: the own-dataset guide's example failing as written: the toy data command, its config (data
    paths, classes, num_classes of both heads) or the checkpoint path the test command names."""
    root, commands, procs = own_dataset_run
    assert [c.split()[1] for c in commands] == ['tools/data/make_toy_data.py', 'tools/train.py', 'tools/test.py']
    assert isinstance(printed_metrics(procs[-1]), dict)  # empty: an untrained detector finds nothing
    assert 'Evaluating bbox...' in procs[-1].stdout + procs[-1].stderr
    assert (root / 'work_dirs' / 'mask_rcnn_fishnet99_fpn_1x_shapes' / 'epoch_1.pth').is_file()


def test_finetune_guide_loads_the_detector(own_dataset_run):
    """Catches: a fine-tuning example that does not start from the detector it names (``load_from`` ignored or
    refused, the 80-class heads failing to load into 3 classes): after its commands, the frozen stem of the
    fine-tuned checkpoint is the stand-in COCO checkpoint's, and the class layer has the new shape."""
    from mmengine.config import Config
    root = own_dataset_run[0]
    commands = guide_commands(open(os.path.join(ROOT, 'docs', 'finetune.md')).read())
    coco_training = [c for c in commands if c.split()[2].startswith('configs/')]
    assert len(coco_training) == 1  # the COCO training, replaced by a stand-in checkpoint
    cfg = Config.fromfile(os.path.join(ROOT, coco_training[0].split()[2]))
    cfg.model.backbone.init_cfg = None
    coco = build_and_run(cfg).state_dict()
    stand_in = root / 'work_dirs' / 'mask_rcnn_fishnet99_fpn_1x_coco' / 'epoch_12.pth'
    stand_in.parent.mkdir(parents=True)
    torch.save({'state_dict': coco, 'meta': {}}, stand_in)
    run_commands(root, [c for c in commands if c not in coco_training])
    tuned = torch.load(root / 'work_dirs' / 'mask_rcnn_fishnet99_fpn_1x_shapes_ft' / 'epoch_1.pth',
                       map_location='cpu')['state_dict']
    stem = [k for k in coco if k.startswith('backbone.stem.') and k.endswith('weight')]
    assert stem and all(torch.equal(tuned[k], coco[k]) for k in stem)
    assert coco['roi_head.bbox_head.fc_cls.weight'].shape[0] == 81
    assert tuned['roi_head.bbox_head.fc_cls.weight'].shape[0] == 4
