"""Facts in the README and docs/ that a script can recompute, recomputed: the checkpoint a test command
evaluates is the one the train command before it writes; FishNet's parameter counts and the configs'
FishNet-201 figures; backbone.md's argument table against ``FishNet.__init__``; the model keys the UPerNet
configs change; the files tools/image_demo.py writes; every backbone error of errors.md, raised; the README's
demo time against its parts; the figures of the model-choice page against the model index; the citation and
the licence. Each checker is also run on a planted stale text and must fail there.
"""
import ast
import importlib.util
import inspect
import os
import re

import pytest
import torch
import yaml

from helpers import ROOT
from test_docs import DOCS, SHELL_SCRIPTS, doc_commands

def read(path):
    return open(os.path.join(ROOT, path)).read()


def table_after(text, marker):
    """The rows (lists of cells, backticks kept) of the markdown table that follows a marker line."""
    lines = text[text.index(marker):].split('\n')[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith('|'))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in re.split(r'(?<!\\)\|', line.strip())[1:-1]])
    return rows


def code_spans(cell):
    return re.findall(r'`([^`]+)`', cell)


# --- 1, 2: the checkpoint a test command evaluates is the one a train command before it writes -------------

TRAINERS = {'tools/train.py': (0, None), 'tools/dist_train.sh': (0, None), 'tools/slurm_train.sh': (2, 3)}
TESTERS = {'tools/test.py': 1, 'tools/dist_test.sh': 1, 'tools/slurm_test.sh': 3, 'tools/image_demo.py': 2,
           'tools/deployment/pytorch2onnx.py': 1}


def cfg_options(args):
    """``--cfg-options k=v ...`` of a command line as a dict (values as Python literals where they parse)."""
    if '--cfg-options' not in args:
        return {}
    out = {}
    for item in args[args.index('--cfg-options') + 1:]:
        if item.startswith('--'):
            break
        key, _, value = item.partition('=')
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def last_checkpoint(config, args):
    """The last checkpoint a training of ``config`` with ``args`` writes: epoch_<max_epochs>.pth or
    iter_<max_iters>.pth (mmengine's CheckpointHook saves the last one whatever its interval)."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(ROOT, config))
    cfg.merge_from_dict(cfg_options(args))
    loop = cfg.train_cfg
    return f'epoch_{loop.max_epochs}.pth' if 'max_epochs' in loop else f'iter_{loop.max_iters}.pth'


def run_demo_trainings():
    """(config, work dir) of every training tools/run_demo.sh runs, with its default WORK_DIR."""
    text = read('tools/run_demo.sh').replace('\\\n', ' ')
    return re.findall(r'tools/train\.py (\S+) --work-dir "\$WORK/(\S+?)"', text)


def checkpoint_path_problems(text):
    """Test commands (fenced blocks) that evaluate a work_dirs/ checkpoint no train command before them on the
    page writes. ``bash tools/run_demo.sh`` counts as its trainings. Trainings of configs outside the
    repository (a guide's my_configs/) are left to the guides' own tests, with the work dirs they write."""
    written, unknown_dirs, problems = set(), set(), []
    for line, kind, script, args, full in doc_commands(text):
        if not full:
            continue
        if script == 'tools/run_demo.sh':
            for config, work in run_demo_trainings():
                written.add(f'work_dirs/{work}/{last_checkpoint(config, [])}')
        elif script in TRAINERS:
            config_at, work_at = TRAINERS[script]
            config = args[config_at]
            work = (args[work_at] if work_at is not None else
                    args[args.index('--work-dir') + 1] if '--work-dir' in args else
                    'work_dirs/' + os.path.splitext(os.path.basename(config))[0])
            if not config.startswith('configs/'):
                unknown_dirs.add(work.rstrip('/'))
                continue
            written.add(f'{work.rstrip("/")}/{last_checkpoint(config, args)}')
        elif script in TESTERS and len(args) > TESTERS[script]:
            ckpt = args[TESTERS[script]]
            if ckpt.startswith('work_dirs/') and ckpt not in written and os.path.dirname(ckpt) not in unknown_dirs:
                problems.append(f'line {line}: {script} reads {ckpt}, which no train command before it writes'
                                f' (they write: {", ".join(sorted(written)) or "nothing"})')
    return problems


# docs/distributed_training.md belongs to another issue's owner; its stale test line (work_dirs/m/epoch_12.pth
# after a training without --work-dir) is fixed there. strict: once fixed, this mark must go.


@pytest.mark.parametrize('doc', DOCS)
def test_test_commands_evaluate_what_the_train_commands_before_them_write(doc):
    """Catches: a page that tests ``work_dirs/m/epoch_12.pth`` after a training without ``--work-dir`` (which
    writes ``work_dirs/<config name>/``), or a checkpoint no command writes (``iter_160000.pth`` in another
    folder), or one of an epoch the schedule never reaches (issue 25, mismatches 1 and 2)."""
    problems = checkpoint_path_problems(read(doc))
    assert not problems, f'{doc}:\n' + '\n'.join(problems)


def test_the_checkpoint_path_checker_fails_on_the_stale_commands():
    """Catches: a checker that lets the issue's stale commands through (it would pass every page)."""
    det = 'configs/mask_rcnn_fishnet150_fpn_1x_coco.py'
    good = (f'```bash\npython tools/train.py {det}\n'
            f'python tools/test.py {det} work_dirs/mask_rcnn_fishnet150_fpn_1x_coco/epoch_12.pth\n```\n')
    assert checkpoint_path_problems(good) == []
    for stale in ('work_dirs/m/epoch_12.pth', 'work_dirs/mask_rcnn_fishnet150_fpn_1x_coco/epoch_24.pth'):
        assert 'no train command before it writes' in ' '.join(
            checkpoint_path_problems(good.replace('work_dirs/mask_rcnn_fishnet150_fpn_1x_coco/epoch_12.pth', stale)))
    seg = 'configs/upernet/upernet_fishnet150_4xb4-160k_ade20k-512x512.py'
    assert checkpoint_path_problems(f'```bash\npython tools/train.py {seg}\n'
                                    f'python tools/test.py {seg} work_dirs/a/iter_160000.pth\n```\n')
    assert set(SHELL_SCRIPTS) >= {s for s in list(TRAINERS) + list(TESTERS) if s.endswith('.sh')}


# --- 4, 5: counts and the argument table ------------------------------------------------------------------

def count(module):
    return sum(p.numel() for p in module.parameters())


def fishnet_counts():
    """Parameters of each variants-table row, rebuilt: (backbone (7, 8, 9, 10), classifier (11,) + 1000-way
    fc), for the default network and for FishNet-201 as its configs build it."""
    from mmengine.config import Config

    from mmfishnet.models import FishNet
    fc = 1056 * 1000 + 1000  # the authors' classifier: a linear layer on the 1056-channel score feature
    rows = {}
    for arch in ('99', '150', '201'):
        rows[arch] = (count(FishNet(arch=arch)), count(FishNet(arch=arch, out_indices=(11, ))) + fc)
    backbone = dict(Config.fromfile(os.path.join(ROOT, 'configs/mask_rcnn_fishnet201_fpn_1x_coco.py')).model.backbone)
    backbone.pop('type'), backbone.pop('init_cfg')
    rows['201 configs'] = (count(FishNet(**backbone)), count(FishNet(**dict(backbone, out_indices=(11, )))) + fc)
    return rows


def variants_rows(text):
    """{'99': (backbone, classifier), ..., '201 configs': ...} from backbone.md's variants table."""
    out = {}
    for row in table_after(text, '## Variants'):
        key = code_spans(row[0])[0].strip("'") + (' configs' if 'bare_first_shortcut=True' in row[0] else '')
        out[key] = tuple(int(c.replace(',', '')) for c in row[3:5])
    return out


def test_parameter_counts_in_the_docs_are_what_fishnet_and_the_configs_build():
    """Catches: FishNet-201 counts of the default network given for the configs, which build it with
    ``bare_first_shortcut=True`` (41,290,944 against 41,290,816; issue 25, mismatch 4), and any count of
    backbone.md's variants table or the README's classifier counts that the code no longer builds."""
    counts = fishnet_counts()
    assert variants_rows(read('docs/backbone.md')) == counts
    classifiers = ' / '.join(f'{counts[a][1]:,}' for a in ('99', '150', '201'))
    assert f'{classifiers} parameters for\n  FishNet-99 / 150 / 201' in read('README.md')
    assert f'{counts["201 configs"][0]:,} parameters and' in read('docs/backbone.md')


def config_201_flops_problems(texts):
    """Pages that give the FishNet-201 configs' backbone GFLOPs otherwise than the model index."""
    meta = yaml.safe_load(read('configs/metafile.yml'))
    [flops] = {m['Metadata']['Backbone FLOPs'] for m in meta['Models'] if 'fishnet201' in m['Name']}
    want = f'{flops / 1e9:.2f}'
    problems = []
    for name, text in texts.items():
        found = re.findall(r'(\d+\.\d\d) GFLOPs at 800x1344|\| FishNet-201 \|(?:[^|]*\|){4} (\d+\.\d\d) \|', text)
        values = {a or b for a, b in found}
        if values != {want}:
            problems.append(f'{name}: FishNet-201 configs at {sorted(values)} GFLOPs, the model index {want}')
    return problems


def test_fishnet201_flops_of_the_configs_are_the_model_index_figure():
    """Catches: a page giving the FishNet-201 configs' backbone FLOPs otherwise than the model index, whose
    figure tests/test_model_index.py recomputes from the configs (issue 25, mismatch 4)."""
    pages = {p: read(p) for p in ('docs/backbone.md', 'docs/choosing_a_model.md')}
    assert config_201_flops_problems(pages) == []
    assert config_201_flops_problems({'stale': pages['docs/backbone.md'].replace('223.89 GFLOPs', '223.90 GFLOPs')})


def argument_table(text):
    """[(argument, default text)] of backbone.md's Arguments table, in its order."""
    out = []
    for row in table_after(text, '## Arguments'):
        names, defaults = code_spans(row[0]), code_spans(row[1]) or [row[1]]
        assert len(names) == len(defaults), row
        out += list(zip(names, defaults))
    return out


def argument_problems(rows):
    from mmfishnet.models import FishNet
    params = [p for name, p in inspect.signature(FishNet.__init__).parameters.items() if name != 'self']
    problems = []
    if [n for n, _ in rows] != [p.name for p in params]:
        problems.append(f'arguments {[n for n, _ in rows]} != signature {[p.name for p in params]}')
    for (name, default), param in zip(rows, params):
        if name == param.name and eval(default, {'dict': dict}) != param.default:
            problems.append(f'{name}: default {default} != {param.default!r}')
    return problems


def test_backbone_argument_table_is_fishnets_signature():
    """Catches: backbone.md's table of every argument leaving one out (``bare_first_shortcut``; issue 25,
    mismatch 5), listing one FishNet does not take, or giving another default."""
    rows = argument_table(read('docs/backbone.md'))
    assert argument_problems(rows) == []
    assert argument_problems([r for r in rows if r[0] != 'bare_first_shortcut'])
    assert argument_problems([(n, 'True' if n == 'with_cp' else d) for n, d in rows])


# --- 6: the model keys the UPerNet configs change ---------------------------------------------------------

def leaves(node, prefix=''):
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in leaves(value, f'{prefix}{key}.').items()}
    return {prefix.rstrip('.'): node}


def seg_key_problems(documented):
    from mmengine.config import Config
    import mmseg
    ours = Config.fromfile(os.path.join(ROOT, 'configs/upernet/upernet_fishnet150_4xb4-160k_ade20k-512x512.py'))
    base = Config.fromfile(os.path.join(os.path.dirname(mmseg.__file__), '.mim', 'configs', 'upernet',
                                        'upernet_r50_4xb4-160k_ade20k-512x512.py'))
    a, b = leaves(ours.to_dict()['model'], 'model.'), leaves(base.to_dict()['model'], 'model.')
    changed = {k for k in set(a) | set(b) if a.get(k, '<absent>') != b.get(k, '<absent>') and '_scope_' not in k}
    covered = lambda key, doc: key == doc or key.startswith(doc + '.')  # noqa: E731
    problems = [f'{k} changed, not on the page' for k in sorted(changed) if not any(covered(k, d) for d in documented)]
    problems += [f'{d} on the page, not changed' for d in documented if not any(covered(k, d) for k in changed)]
    return problems


def test_segmentation_page_names_every_model_key_the_configs_change():
    """Catches: segmentation.md saying the configs change only the backbone and the heads' widths while they
    also set the data preprocessor's ``size_divisor`` (issue 25, mismatch 6), or any other change of the
    model against mmseg's baseline that the page leaves out or names wrongly."""
    rows = table_after(read('docs/segmentation.md'), '<!-- model keys the UPerNet configs change -->')
    documented = [code_spans(r[0])[0] for r in rows]
    assert seg_key_problems(documented) == []
    assert seg_key_problems([d for d in documented if 'data_preprocessor' not in d])


# --- 7: what tools/image_demo.py writes -------------------------------------------------------------------

def documented_outputs(text):
    """{task: set of path patterns} of inference_export.md's output table."""
    out = {}
    for row in table_after(text, '<!-- image_demo outputs'):
        for task in ('detection', 'classification', 'segmentation'):
            if task in row[1] or row[1] == 'all':
                out.setdefault(task, set()).add(code_spans(row[0])[0])
    return out


def expand(pattern, images):
    """The files a pattern names for these input images (DIR/ dropped)."""
    out = set()
    for n, image in enumerate(images):
        out.add(pattern.replace('DIR/', '').replace('<image>', image).replace('<stem>', os.path.splitext(image)[0])
                .replace('<n>', f'{n:08d}'))
    return out


@pytest.fixture(scope='module')
def image_demo_outputs(tmp_path_factory):
    """What tools/image_demo.py writes for two images per task, with the toy configs' random weights."""
    import cv2
    import numpy as np
    spec = importlib.util.spec_from_file_location('image_demo_for_docs', os.path.join(ROOT, 'tools', 'image_demo.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = tmp_path_factory.mktemp('image_demo')
    images = root / 'images'
    images.mkdir()
    names = ['a.jpg', 'b.png']
    for name in names:
        cv2.imwrite(str(images / name), np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8))
    written = {}
    for task, config in [('classification', 'configs/toy/fishnet99_1xb16_toy-cls.py'),
                         ('segmentation', 'configs/toy/upernet_fishnet99_toy-seg.py'),
                         ('detection', 'configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py')]:
        out = root / task
        tool.main([str(images), os.path.join(ROOT, config), '--out-dir', str(out), '--device', 'cpu'])
        written[task] = {os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files}
    return names, written


def test_inference_page_names_the_files_image_demo_writes(image_demo_outputs):
    """Catches: inference_export.md giving ``DIR/vis/<image>`` for every task while classification writes
    ``vis/<stem>.png``, and leaving out segmentation's ``pred/<n>_pred.png`` (issue 25, mismatch 7): for each
    task the documented files are exactly the files the tool writes."""
    names, written = image_demo_outputs
    documented = documented_outputs(read('docs/inference_export.md'))
    for task, files in written.items():
        assert set().union(*(expand(p, names) for p in documented[task])) == files, task
    stale = {t: {'DIR/vis/<image>', 'DIR/preds/<stem>.json'} for t in written}
    assert any(set().union(*(expand(p, names) for p in stale[t])) != files for t, files in written.items())


# --- 8: the backbone errors of errors.md, raised ----------------------------------------------------------

def error_problems(rows):
    """Rows of errors.md's backbone table whose call does not raise the documented type and message."""
    from mmfishnet.models import FishNet
    problems = []
    for row in rows:
        [call], error, [message] = code_spans(row[1]), row[2], code_spans(row[3])
        try:
            eval(call, {'FishNet': FishNet, 'torch': torch})
        except Exception as e:  # noqa: BLE001  the type is what is checked
            got = (type(e).__name__, str(e))
        else:
            problems.append(f'{call} raised nothing')
            continue
        pieces = [p.strip() for p in message.split('...')]
        pattern = ('' if message.startswith('...') else '^') + '.*'.join(map(re.escape, filter(None, pieces))) + \
            ('' if message.endswith('...') else '$')
        if got[0] != error or not re.search(pattern, got[1], flags=re.S):
            problems.append(f'{call}: documented {error}: {message}; raised {got[0]}: {got[1]}')
    return problems


def test_every_backbone_error_of_the_errors_page_is_raised_as_documented():
    """Catches: an errors.md entry whose message or type the code does not raise (``arch=3.5`` listed under
    "unknown FishNet arch" while FishNet raises a TypeError naming the type; issue 25, mismatch 8): every
    call of the backbone table is made, and its error type and message must be the documented ones."""
    rows = table_after(read('docs/errors.md'), '<!-- backbone errors')
    assert len(rows) >= 15
    assert error_problems(rows) == []
    stale = [['', '`FishNet(arch=3.5)`', 'ValueError',
              "`unknown FishNet arch 3.5: use one of ['99', '150', '201'] ...`"]]
    assert error_problems(stale)


# --- 9: the README's demo time ----------------------------------------------------------------------------

def demo_time_problems(readme, get_started, development):
    m = re.search(r'bash tools/run_demo\.sh .*?(\d+)-(\d+) min on 2 CPU cores \((\d+)-(\d+) min mmcv build \+ '
                  r'(\d+)-(\d+) min\)', readme)
    if not m:
        return ["README: the demo's time on a cold machine, with the mmcv build, is not given"]
    total, build, demo = [tuple(map(int, m.groups()[i:i + 2])) for i in (0, 2, 4)]
    problems = []
    if total != (build[0] + demo[0], build[1] + demo[1]):
        problems.append(f'README: {total} min is not the build {build} + the demo {demo}')
    if f'(~{build[0]}-{build[1]} min on 2 CPU cores)' not in get_started.replace('\n', ' '):
        problems.append(f'README: the build time {build} is not get_started.md\'s')
    section = development.split('## Dated demo runs', 1)[-1].split('\n## ', 1)[0]
    runs = [float(t) for t in re.findall(r'^\| \d{4}-\d\d-\d\d[^|]*\| ([\d.]+) min', section, flags=re.M)]
    if not runs or demo != (round(min(runs)), round(max(runs))):
        problems.append(f'README: the demo time {demo} is not the range of the dated runs {runs}')
    return problems


def test_readme_demo_time_includes_the_mmcv_build():
    """Catches: a README demo time that leaves out the 10-18 min mmcv build it sits next to (issue 25, mismatch
    9), whose parts disagree with get_started.md's build time or with the dated runs in development.md."""
    texts = read('README.md'), read('docs/get_started.md'), read('docs/development.md')
    assert demo_time_problems(*texts) == []
    stale = texts[0].replace('32-55 min on 2 CPU cores (10-18 min mmcv build + 22-37 min)', '22-37 min on 2 CPU cores')
    assert demo_time_problems(stale, *texts[1:])
    assert demo_time_problems(texts[0].replace('32-55 min', '32-50 min'), *texts[1:])


# --- the model-choice page, the citation, the licence -----------------------------------------------------

def choice_problems(text):
    models = {m['Name']: m for f in ('configs/fishnet/metafile.yml', 'configs/metafile.yml')
              for m in yaml.safe_load(read(f))['Models']}
    problems = []
    for row in table_after(text, '<!-- model-index figures'):
        arch = re.search(r'FishNet-(\d+)', row[0]).group(1)
        cls = models[f'fishnet{arch}_8xb32_in1k']['Metadata']
        det = models[f'mask_rcnn_fishnet{arch}_fpn_1x_coco']['Metadata']
        want = [f'{cls["Parameters"] / 1e6:.2f}', f'{cls["FLOPs"] / 1e9:.2f}',
                f'{det["Backbone Parameters"] / 1e6:.2f}', f'{det["Backbone FLOPs"] / 1e9:.2f}']
        if [row[1], row[2], row[4], row[5]] != want:
            problems.append(f'{row[0]}: {[row[1], row[2], row[4], row[5]]}, the model index {want}')
    return problems


def test_model_choice_figures_are_the_model_index():
    """Catches: parameters or FLOPs on docs/choosing_a_model.md that differ from the model index (a copy gone
    stale when a metafile is recomputed)."""
    text = read('docs/choosing_a_model.md')
    assert choice_problems(text) == []
    assert choice_problems(text.replace('| 13.34 |', '| 13.33 |'))


def test_citation_and_licence_agree_everywhere():
    """Catches: a CITATION.cff that is not CFF 1.2.0 (missing required keys) or cites the paper otherwise than
    the README's BibTeX (authors, title, pages, year), and a licence that differs between LICENSE, setup.py
    and CITATION.cff. The paper's data: papers.nips.cc, NeurIPS 2018 proceedings metadata (pages 754-764)."""
    cff = yaml.safe_load(read('CITATION.cff'))
    assert cff['cff-version'] == '1.2.0' and {'authors', 'message', 'title'} <= set(cff)
    paper = cff['preferred-citation']
    readme = read('README.md')
    bib = dict(re.findall(r'^\s+(\w+)\s+= \{(.*)\},?$', readme.split('```bibtex', 1)[1].split('```')[0], flags=re.M))
    authors = ' and '.join(f'{a["family-names"]}, {a["given-names"]}' for a in paper['authors'])
    assert (bib['author'], bib['title'], bib['pages'], bib['year']) == (
        authors, paper['title'], f'{paper["start"]}--{paper["end"]}', str(paper['year']))
    assert bib['author'] == 'Sun, Shuyang and Pang, Jiangmiao and Shi, Jianping and Yi, Shuai and Ouyang, Wanli'
    assert 'Apache License\n                           Version 2.0, January 2004' in read('LICENSE')
    assert cff['license'] == 'Apache-2.0'
    assert "license='Apache License 2.0'" in read('setup.py')
