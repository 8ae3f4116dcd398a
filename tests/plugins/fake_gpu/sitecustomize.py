"""Test-only: a Python process started with this folder on PYTHONPATH believes it runs on a machine with
one GPU, as torch reports it there: ``torch.cuda.is_available()`` is True unless ``CUDA_VISIBLE_DEVICES``
is set to an empty string. Nothing can run on the pretended GPU; it shows which code paths a GPU machine
takes."""
import os

import torch

_visible = os.environ.get('CUDA_VISIBLE_DEVICES') != ''
torch.cuda.is_available = lambda: _visible
torch.cuda.device_count = lambda: int(_visible)
