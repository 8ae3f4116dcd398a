# Copyright (c) mmfishnet contributors. All rights reserved.
"""Random augmentations that are a function of the sample, so that a resume starts at the next sample
without loading the trained ones.

mmcv's, mmseg's and mmdet's transforms draw from Python's and NumPy's global generators (a few from torch's)
of the process that runs the pipeline: a data-loading worker, seeded once when it starts (mmengine's
``worker_init_fn``), or the main process with ``num_workers=0``. A sample's augmentation then depends on
every sample that process handled before it, so continuing the draws after a resume means loading all of
those again (mmengine's ``IterBasedTrainLoop`` replays every done iteration's data), and the streams of
persistent workers cannot be continued at all. Here instead:

- :class:`ResumableInfiniteSampler` yields each sample's index as a :class:`SampleKey` that also carries the
  seed and the pass over the data (``epoch``), and starts at any position of its rank's stream without
  computing the passes before it (:meth:`~ResumableInfiniteSampler.set_start`);
- :class:`SeededSamples` wraps the dataset and runs the pipeline of each keyed sample with Python's, NumPy's
  and torch's CPU generators seeded from (seed, epoch, index); in the main process (``num_workers=0``) it
  puts the previous states back, so the training's streams (dropout, ...) are untouched by data loading.

:class:`~mmfishnet.engine.ResumableIterBasedTrainLoop` uses both.
"""
import hashlib
import random
from contextlib import contextmanager

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler, get_worker_info


class SampleKey(int):
    """A sample's index (an ``int``: a dataset without :class:`SeededSamples` reads it as the index) with the
    ``seed`` and ``epoch`` (the pass over the data) that its random augmentation is a function of."""

    def __new__(cls, index: int, seed: int, epoch: int):
        key = super().__new__(cls, index)
        key.seed, key.epoch = seed, epoch
        return key

    def __getnewargs__(self):  # pickled to the data-loading workers
        return int(self), self.seed, self.epoch

    def __repr__(self):
        return f'SampleKey(index={int(self)}, seed={self.seed}, epoch={self.epoch})'


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(Sampler):
    """An endless sampler for iteration-based training that can start anywhere in its stream.

    The global stream is the concatenation of passes over the dataset; pass ``e`` is the dataset's indices in
    the order ``torch.randperm`` gives with a generator seeded with ``seed + e`` (the order mmengine's
    ``DefaultSampler`` gives epoch ``e``), or in order without ``shuffle``. Rank ``r`` of ``world_size`` takes
    the samples ``r, r + world_size, ...`` of it (the split of mmengine's ``InfiniteSampler``). Each index is
    yielded as a :class:`SampleKey` with the seed and the pass.

    Args:
        dataset (Sized): The dataset.
        shuffle (bool): Shuffle each pass. Default: True.
        seed (int, optional): The seed of the order and (through :class:`SeededSamples`) of the
            augmentations. Default: None, one drawn on rank 0 and shared (mmengine's ``sync_random_seed``).
        start (int, optional): This rank's sample to start at (``iterations done x batch size``). None: the
            sampler yields nothing until :meth:`set_start` is called. Default: 0.
    """

    def __init__(self, dataset, shuffle: bool = True, seed=None, start=0):
        self.rank, self.world_size = get_dist_info()
        self.size, self.shuffle = len(dataset), shuffle
        self.seed = sync_random_seed() if seed is None else seed
        self.start = start

    def set_start(self, start) -> None:
        """Start the next iteration over the sampler at this rank's ``start``-th sample (None: yield nothing)."""
        self.start = start

    def _order(self, epoch: int) -> list:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator()
        generator.manual_seed(self.seed + epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self):
        if self.start is None:
            return
        position, epoch, order = self.start * self.world_size + self.rank, None, None
        while True:
            this_epoch, i = divmod(position, self.size)
            if this_epoch != epoch:
                epoch, order = this_epoch, self._order(this_epoch)
            yield SampleKey(order[i], self.seed, epoch)
            position += self.world_size

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: the pass is part of the position (mmengine's loops call it)."""


def sample_seed(key: SampleKey) -> int:
    """The 64-bit seed of a sample's augmentation, a function of (seed, epoch, index) alone (BLAKE2b: the
    same on every machine and in every process, unlike Python's ``hash``)."""
    text = f'{key.seed},{key.epoch},{int(key)}'.encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), 'little')


@contextmanager
def seeded_generators(seed: int, restore: bool = True):
    """Python's, NumPy's and torch's CPU generators seeded from ``seed`` inside; with ``restore``, as they
    were before once outside (a data-loading worker has no stream to keep: about 1.5 ms a sample saved)."""
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if restore else None
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: that seeds the CUDA generators too
    try:
        yield
    finally:
        if states is not None:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


@DATASETS.register_module()
class SeededSamples(Dataset):
    """A dataset whose sample ``key`` (a :class:`SampleKey`) runs the pipeline under generators seeded from
    (seed, epoch, index): its random augmentation is the same whichever process loads it and whatever it
    loaded before. A plain index is passed on as is. Every other attribute is the wrapped dataset's.

    Args:
        dataset (Dataset | dict): The dataset, or its config (built in the current scope).
    """

    def __init__(self, dataset):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if not isinstance(key, SampleKey):
            return self.dataset[key]
        # the main process (num_workers=0) keeps its training streams; a worker's are this wrapper's alone
        with seeded_generators(sample_seed(key), restore=get_worker_info() is None):
            return self.dataset[int(key)]

    def __getattr__(self, name):
        if name.startswith('__') or name == 'dataset':  # not found on the wrapper itself (e.g. unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)
