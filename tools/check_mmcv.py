# Copyright (c) mmfishnet contributors. All rights reserved.
"""What tools/setup_env.sh asks about mmcv (runs with the venv's Python, before mmfishnet is installed).

    python tools/check_mmcv.py VERSION     # is mmcv VERSION installed with ops this machine can run?
    python tools/check_mmcv.py --wheel-key # the cache key of an mmcv wheel built here

The check proves what this machine needs. Without CUDA: mmcv VERSION with its compiled ops, and nms runs.
Where torch sees a GPU: also mmcv's CUDA ops, compiled in (``get_compiling_cuda_version()``) and run on a
CUDA tensor (RoIAlign and nms, compared with the CPU kernels), so that a wheel built without CUDA, or for
other GPU architectures, is refused here instead of at the first RoIAlign of a training job. With
``FORCE_CUDA=1`` on a machine without GPUs (a login node building for the GPU nodes), the CUDA ops must be
compiled in; running them is left to the same check on a GPU node.

The wheel key names what the wheel depends on: Python, torch, torch's CUDA version and the GPU
architectures the kernels are built for (``TORCH_CUDA_ARCH_LIST``, else those of the visible GPUs), e.g.
``cp312-torch2.14.1-cu130-sm80_90`` or ``cp312-torch2.14.1-cpu``.
"""
import argparse
import os
import re
import subprocess
import sys


class CheckFailed(Exception):
    """mmcv is missing, of another version, or cannot run its ops here (the message says what to do)."""


def builds_cuda() -> bool:
    """Whether mmcv's setup.py compiles the CUDA ops here (its own condition)."""
    import torch
    return torch.cuda.is_available() or os.environ.get('FORCE_CUDA', '0') == '1'


def cuda_arch_list() -> list:
    """The GPU architectures a CUDA build targets: TORCH_CUDA_ARCH_LIST, else the visible GPUs' (as
    torch.utils.cpp_extension does), sorted; e.g. ['8.0', '9.0+PTX']."""
    import torch
    listed = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if listed:
        return sorted(set(re.split(r'[;\s,]+', listed)))
    return sorted({'{}.{}'.format(*torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count())})


def wheel_key() -> str:
    import torch
    key = f'cp{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__.split("+")[0]}'
    if not builds_cuda():
        return f'{key}-cpu'
    if torch.version.cuda is None:
        raise CheckFailed(f'FORCE_CUDA=1 but torch {torch.__version__} is a CPU-only build; install a CUDA '
                          'build of torch (the default PyPI wheels are)')
    archs = cuda_arch_list()
    if not archs:
        raise CheckFailed('FORCE_CUDA=1 without a visible GPU needs the GPU nodes\' architectures, e.g. '
                          'TORCH_CUDA_ARCH_LIST="8.0;9.0" (A100, H100)')
    sm = '_'.join(a.replace('.', '').replace('+PTX', 'ptx') for a in archs)
    return f"{key}-cu{torch.version.cuda.replace('.', '')}-sm{sm}"


# mmcv's own report of the CUDA it was compiled with, asked in a child process: built with nvcc 13.0 for
# torch 2.11 (the lent H200, 2026-11-26), mmcv 2.1.0's get_compiling_cuda_version() kills the process with a
# segmentation fault although its CUDA ops work, and it must not take setup_env.sh down with it.
VERSION_QUERY = 'from mmcv.ops import get_compiling_cuda_version as v; print(v())'


def _ext_has_cuda_code() -> bool:
    """Whether mmcv's compiled extension holds CUDA kernels: nvcc's host code registers each object's fat
    binary through __cudaRegisterFatBinary, which no CPU-only object file references."""
    import importlib
    ext = importlib.import_module('mmcv._ext')
    with open(ext.__file__, 'rb') as f:
        return b'__cudaRegisterFatBinary' in f.read()


def compiled_cuda_version() -> str:
    """'not available' for an mmcv built without CUDA ops; else the CUDA version it was compiled with, as
    mmcv reports it, or 'unknown (...)' where asking crashes."""
    if not _ext_has_cuda_code():
        return 'not available'
    proc = subprocess.run([sys.executable, '-c', VERSION_QUERY], capture_output=True, text=True)
    answer = proc.stdout.strip()
    if proc.returncode != 0 or not answer:
        return f"unknown (mmcv's get_compiling_cuda_version() failed with exit code {proc.returncode})"
    return answer


def check(version: str) -> str:
    """Raise :class:`CheckFailed` unless mmcv ``version`` can run its ops here; return what was proved."""
    import torch
    try:
        import mmcv
    except ImportError as e:
        raise CheckFailed(f'mmcv is not installed ({e})') from e
    if mmcv.__version__ != version:
        raise CheckFailed(f'mmcv {mmcv.__version__} is installed, {version} is wanted')
    try:
        from mmcv.ops import RoIAlign, nms
    except ImportError as e:
        raise CheckFailed(f'mmcv {version} has no compiled ops ({e}); build it with MMCV_WITH_OPS=1') from e
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, 0.5)
    if keep.tolist() != [0, 2]:  # box 1 overlaps box 0 with IoU 0.81
        raise CheckFailed(f'mmcv nms on CPU kept {keep.tolist()} instead of [0, 2]')
    compiled = compiled_cuda_version()
    if not torch.cuda.is_available():
        if os.environ.get('FORCE_CUDA', '0') == '1':
            if compiled == 'not available':
                raise CheckFailed('FORCE_CUDA=1 but mmcv was built without its CUDA ops; rebuild it (see '
                                  'docs/get_started.md)')
            return f'mmcv {version}: ops on CPU; CUDA ops compiled with CUDA {compiled} (no GPU here to run them)'
        return f'mmcv {version}: ops on CPU (no GPU visible)'
    gpu = f'{torch.cuda.get_device_name(0)}, sm_{"".join(map(str, torch.cuda.get_device_capability(0)))}'
    if compiled == 'not available':
        raise CheckFailed(f'torch sees a GPU ({gpu}) but mmcv {version} was built without its CUDA ops (e.g. on '
                          'a machine without GPUs); rebuild it here, or on the build machine with FORCE_CUDA=1 '
                          'and TORCH_CUDA_ARCH_LIST (docs/get_started.md)')
    try:
        _, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
        feats = torch.arange(2 * 8 * 8, dtype=torch.float32).view(1, 2, 8, 8)
        rois = torch.tensor([[0., 0.5, 1., 6., 5.], [0., 2., 2., 7.5, 7.]])
        roi_align = RoIAlign((3, 3), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        cpu_out, gpu_out = roi_align(feats, rois), roi_align(feats.cuda(), rois.cuda()).cpu()
    except RuntimeError as e:
        raise CheckFailed(f"mmcv's CUDA ops (CUDA {compiled}) do not run on this GPU ({gpu}): "
                          f'{str(e).strip().splitlines()[0]}; rebuild with this architecture in '
                          'TORCH_CUDA_ARCH_LIST') from e
    if keep_gpu.tolist() != [0, 2] or not torch.allclose(cpu_out, gpu_out, atol=1e-4):
        raise CheckFailed(f"mmcv's CUDA ops disagree with its CPU ops on {gpu}")
    return f'mmcv {version}: ops on CPU and CUDA (compiled with CUDA {compiled}; RoIAlign and nms ran on {gpu})'


def build_parser() -> argparse.ArgumentParser:
    """The command line: a VERSION to check, or --wheel-key (tests/test_docs.py reads the flags from here)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('version', nargs='?', help='the mmcv version that must be installed with runnable ops')
    group.add_argument('--wheel-key', action='store_true', help='print the cache key of an mmcv wheel built here')
    return parser


def main(argv) -> int:
    args = build_parser().parse_args(argv)  # exits 2 with the usage on a wrong command line
    try:
        if args.wheel_key:
            print(wheel_key())
        else:
            print(check(args.version))
    except CheckFailed as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
