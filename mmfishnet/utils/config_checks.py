# Copyright (c) mmfishnet contributors. All rights reserved.
"""Checks of a config before the Runner is built, so a wrong path fails at second one with a message
that says where things go, instead of deep inside a dataset or a hook."""
import os.path as osp

from .checkpoint import is_remote
from .errors import UserError

DATA_HINTS = {
    'CocoDataset': 'download COCO 2017 (train2017/, val2017/, annotations/) and put it at data/coco '
                   '(see docs/detection.md)',
    'ImageNet': 'put ImageNet-1k at data/imagenet (train/, val/ and meta/ as mmpretrain expects; see '
                'docs/classification.md)',
    'CIFAR10': 'put the CIFAR-10 python pickles (cifar-10-batches-py/) at data/cifar10 (see docs/classification.md)',
    'CustomDataset': 'generate the bundled toy data first: python tools/data/make_toy_data.py',
    'ADE20KDataset': 'download ADEChallengeData2016 (ADE20K, images/ and annotations/ with training/ and '
                     'validation/) and put it at data/ade/ADEChallengeData2016 (see docs/segmentation.md)',
    'CityscapesDataset': 'put Cityscapes (leftImg8bit/ and gtFine/ with train/ and val/, labelTrainIds made by '
                         "mmseg's tools/dataset_converters/cityscapes.py) at data/cityscapes (see "
                         'docs/segmentation.md)',
    'BaseSegDataset': 'generate the bundled toy data first: python tools/data/make_toy_data.py',
}


def _datasets(dataset_cfg):
    """The leaf dataset configs inside wrappers (RepeatDataset, ConcatDataset, ClassBalancedDataset)."""
    if dataset_cfg is None:
        return []
    if 'datasets' in dataset_cfg:
        return [d for sub in dataset_cfg['datasets'] for d in _datasets(sub)]
    if 'dataset' in dataset_cfg:
        return _datasets(dataset_cfg['dataset'])
    return [dataset_cfg]


def is_local_path(path: str, backend_args: dict = None) -> bool:
    """Whether mmengine's file I/O reads ``path`` from this machine's file system: the backend that
    ``mmengine.fileio.get_file_backend(path, backend_args=backend_args)`` picks is ``LocalBackend``. As there,
    a ``backend`` named in ``backend_args`` decides first (e.g. ``'petrel'`` with a ``path_mapping`` that
    sends ``data/`` to ``s3://...``), else the path's prefix (``s3://``, petrel's ``cluster:s3://``,
    ``http(s)://``; none: local). Decided from mmengine's backend tables, without building the backend
    (which would need petrel_client, a memcached server or an lmdb file). A backend or prefix mmengine does
    not know counts as not local: mmengine itself will say what is wrong with it."""
    from mmengine.fileio.backends import LocalBackend, backends, prefix_to_backends
    from mmengine.fileio.io import _parse_uri_prefix
    backend_args = backend_args or {}
    try:
        if 'backend' in backend_args:
            backend = backends[backend_args['backend']]
        else:
            backend = prefix_to_backends[_parse_uri_prefix(path)]
    except (KeyError, ValueError):
        return False
    return issubclass(backend, LocalBackend)


def _backend_args(node) -> list:
    """Every ``backend_args`` in a dataset config: its own and its pipeline's (``LoadImageFromFile``...)."""
    if isinstance(node, dict):
        found = [node['backend_args']] if isinstance(node.get('backend_args'), dict) else []
        return found + [a for key, value in node.items() if key != 'backend_args' for a in _backend_args(value)]
    if isinstance(node, (list, tuple)):
        return [a for value in node for a in _backend_args(value)]
    return []


def check_dataset_paths(cfg, splits=('train', 'val', 'test')) -> None:
    """Refuse data roots and annotation files that are not there, naming where the data goes. Paths that
    mmengine reads through another file backend (:func:`is_local_path` false under the dataset's own or its
    pipeline's ``backend_args``: Ceph/S3 through petrel, HTTP...) are left to mmengine, with one printed
    note."""
    problems, remote = [], []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for ds in _datasets(loader.get('dataset')):
            root = ds.get('data_root', '') or ''
            paths = []
            if root:
                paths.append(root)
            ann = ds.get('ann_file', '') or ''
            if ann:
                paths.append(ann if osp.isabs(ann) or not root else osp.join(root, ann))
            backend_args = _backend_args(ds) or [None]
            for path in paths:
                if not all(is_local_path(path, args) for args in backend_args):
                    remote.append(f'{split} data {path}')
                elif not osp.exists(path):
                    kind = str(ds.get('type', ''))
                    hint = DATA_HINTS.get(kind.split('.')[-1], 'fix the path in the config')
                    problems.append(f'{split} data: {path} does not exist ({kind}); {hint}, or point '
                                    f'{split}_dataloader.dataset.data_root elsewhere with --cfg-options')
                    break
    if problems:
        raise UserError('\n'.join(dict.fromkeys(problems)))
    if remote:
        print(f"note: not checked, read through mmengine's file backends (backend_args or a URI prefix): "
              f"{', '.join(dict.fromkeys(remote))}", flush=True)


def check_pretrained_paths(cfg) -> None:
    """A ``Pretrained`` init_cfg or ``load_from`` naming a local file that is not there."""
    missing = []

    def visit(node, where):
        if isinstance(node, dict):
            if node.get('type') == 'Pretrained':
                ckpt = node.get('checkpoint')
                if isinstance(ckpt, str) and not is_remote(ckpt) and not osp.isfile(ckpt):
                    missing.append(f'{where}.init_cfg: pretrained checkpoint {ckpt} does not exist; convert '
                                   'the official weights with tools/model_converters/fishnet_to_mmfishnet.py '
                                   'to that path (docs/pretrained.md), or train from scratch with '
                                   f'--cfg-options {where}.init_cfg=None')
            for key, value in node.items():
                visit(value, f'{where}.{key}' if key != 'init_cfg' else where)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value, where)

    visit(cfg.get('model', {}), 'model')
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and not is_remote(load_from) and not osp.isfile(load_from):
        missing.append(f'load_from: checkpoint {load_from} does not exist')
    if missing:
        raise UserError('\n'.join(missing))


def check_checkpoint(path: str, trust: bool = False):
    """A checkpoint given to train (load_from / resume) or test must exist, be readable (weights only, unless
    ``trust``) and not be an official (unconverted) FishNet file. URLs and mmengine's other prefixes are
    fetched and checked the same way. Returns its state dict."""
    from .checkpoint import read_state_dict
    return read_state_dict(path, trust=trust)[1]


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])

