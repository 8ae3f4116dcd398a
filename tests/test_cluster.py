"""What a GPU cluster needs, simulated on CPU (issue 11): ranks that agree to stop on a non-finite loss,
launchers that do not collide and ask Slurm only for what they use, mmcv's CUDA ops proven where torch sees
a GPU, pretrained weights from URLs, tracebacks kept for unexpected errors, and a suite that holds on a GPU
machine."""
import contextlib
import functools
import http.server
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from helpers import ROOT, fake_command, run_tool, save_toy_classifier, tiny_cls_config, toy_cls_data
from mmfishnet.engine import NonFiniteLossError, NonFiniteLossHook
from mmfishnet.models import FishNet
from mmfishnet.utils.checkpoint import TRUST_ENV, CheckpointError
from mmfishnet.utils.cli import UserError, run_cli

PLUGINS = os.path.join(ROOT, 'tests', 'plugins')


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    return toy_cls_data(tmp_path_factory, 'toy_cls_cluster', num_train=12, num_val=2)


def without_launch_env(**extra):
    """A tool environment with no port chosen and outside any Slurm job."""
    env = dict.fromkeys(('PORT', 'MASTER_PORT', 'MASTER_ADDR', 'NNODES', 'SLURM_JOB_ID'))  # None: removed
    env.update(extra)
    return env


# ---------------------------------------------------------------- a non-finite loss stops every rank
def test_nan_loss_on_one_rank_stops_every_rank_with_one_message(tmp_path, cls_data):
    """Bug: the rank that saw a NaN loss raised alone while the other went on into the next iteration's
    gradient all-reduce, waiting there (with NCCL, until a timeout) for a peer that had stopped."""
    extra = ("custom_imports = dict(imports=['mmfishnet', 'nan_on_one_rank'], allow_failed_imports=False)\n"
             "custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='NaNLossOnOneRank', rank=1, iteration=2)]")
    cfg = tiny_cls_config(tmp_path, cls_data, epochs=1, extra=extra)
    work = tmp_path / 'work'
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(work),
                    tool_env=dict(PYTHONPATH=PLUGINS + os.pathsep + os.environ.get('PYTHONPATH', '')),
                    timeout=600)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error: the loss became')]
    assert len(lines) == 2 and lines[0] == lines[1], proc.stderr[-4000:]  # both ranks, the same words
    assert 'at iteration 2 (epoch 1, batch 2) on rank 1 of 2' in lines[0] and 'rank 1: loss=nan' in lines[0]
    assert re.search(r'exitcode\s*: 2\b', proc.stderr), proc.stderr[-3000:]  # run_cli's code, not an abort
    assert 'terminate called' not in proc.stderr
    assert not list(work.glob('*.pth'))


ENDS_AFTER_A_PROCESS_GROUP = """
import atexit, logging, logging.handlers, os, sys
import torch.distributed as dist
from mmfishnet.utils.cli import UserError, run_cli

out = sys.argv[1]
atexit.register(lambda: open(os.path.join(out, 'finalized'), 'w').close())  # runs in finalization only
log = logging.getLogger('run')
log.addHandler(logging.handlers.MemoryHandler(  # written when closed (logging.shutdown) or when full
    100, target=logging.FileHandler(os.path.join(out, 'run.log'))))

def main():
    if sys.argv[2] == 'group':
        dist.init_process_group('gloo', init_method='file://' + os.path.join(out, 'store'), rank=0,
                                world_size=1)
        dist.barrier()
    print('metrics: 1.0')  # stdout is a pipe here: block-buffered, not yet written
    log.warning('last log line')
    if sys.argv[3] == 'fail':
        raise UserError('bad input')

sys.exit(run_cli(main))
"""


@pytest.mark.parametrize('outcome,code', [('ok', 0), ('fail', 2)])
def test_a_rank_ends_without_finalizing_the_interpreter(tmp_path, outcome, code):
    """Bug: a rank ended through the interpreter's finalization after closing its process group. torch's
    gloo worker threads release finished collectives' tensors later, taking the GIL; one that waits for it
    when finalization starts is ended inside a C++ destructor and the rank aborts ('terminate called
    without an active exception', exit -6 instead of run_cli's code: 3 of about 120 runs of the 2-rank NaN
    test above on CPU; pytorch/pytorch#190489). The race cannot be forced, so this checks that such a
    process never reaches finalization (an atexit handler would leave a file) and that what it printed and
    logged is not lost by ending early, with the tool's exit code. A process without a group still
    finalizes (the control: the handler runs there)."""
    script = tmp_path / 'tool.py'
    script.write_text(ENDS_AFTER_A_PROCESS_GROUP)
    for mode in ('group', 'none'):
        out = tmp_path / mode
        out.mkdir()
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONUNBUFFERED'}
        proc = subprocess.run([sys.executable, str(script), str(out), mode, outcome], capture_output=True,
                              text=True, timeout=300, cwd=ROOT, env=dict(env, PYTHONPATH=ROOT))
        assert proc.returncode == code, proc.stderr[-3000:]
        assert proc.stdout == 'metrics: 1.0\n'
        assert (out / 'run.log').read_text() == 'last log line\n'
        assert (out / 'finalized').exists() == (mode == 'none')
        assert proc.stderr == ('error: bad input\n' if outcome == 'fail' else '')


SAYS = """
import os, sys, time
from mmfishnet.utils.cli import _say
rank, ready = sys.argv[1], sys.argv[2]
open(os.path.join(ready, rank), 'w').close()
while len(os.listdir(ready)) < 2:  # both processes write at the same time, however long their imports took
    time.sleep(0.001)
for i in range(3000):
    _say(f'error: rank {rank} line {i} ' + 'x' * 300)
"""


def test_two_ranks_error_lines_are_never_glued(tmp_path):
    """Bug: run_cli printed its one-line error with print(), which writes the text and its newline in two
    calls; two ranks sharing their launcher's stderr then glued their lines ('...--resumeerror: the loss
    became ...' on one line, seen in the 2-rank NaN test; torchrun starts each rank with ``python -u``,
    whose stderr writes every piece at once). Each line must reach the pipe in one write."""
    script = tmp_path / 'say.py'
    script.write_text(SAYS)
    ready = tmp_path / 'ready'
    ready.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = f'{sys.executable} -u {script} 0 {ready} & {sys.executable} -u {script} 1 {ready} & wait'  # as torchrun
    proc = subprocess.run(['bash', '-c', cmd], capture_output=True, text=True, timeout=300, env=env)
    lines = proc.stderr.splitlines()
    assert {line.split()[2] for line in lines} == {'0', '1'}
    assert all(re.fullmatch(r'error: rank [01] line \d+ x{300}', line) for line in lines)


class FakeRunner:
    iter, epoch = 41, 3


@pytest.mark.filterwarnings('ignore::UserWarning', 'ignore::FutureWarning')
def test_amp_overflow_of_scaled_gradients_does_not_stop_training(monkeypatch):
    """Guards against checking gradients instead of the loss: under AMP with a dynamic loss scale, scaled
    gradients that overflow make GradScaler skip the step and lower the scale; training must go on. A
    non-finite loss still stops it. (mmengine's AmpOptimWrapper asserts CUDA; its scaler is replaced by
    torch's CPU GradScaler, which behaves the same.)"""
    from mmengine.optim import AmpOptimWrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    model = torch.nn.Linear(4, 1)
    torch.nn.init.ones_(model.weight)
    torch.nn.init.zeros_(model.bias)
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss_scale='dynamic')
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2. ** 127)
    before = model.weight.detach().clone()
    loss = model(torch.full((2, 4), 100.)).pow(2).mean()  # 400^2, finite
    wrapper.update_params(loss)  # d loss / d w = 2 * 400 * 100, times 2^127: inf in float32, step skipped
    assert torch.equal(model.weight, before) and wrapper.loss_scaler.get_scale() < 2. ** 127
    NonFiniteLossHook().after_train_iter(FakeRunner(), 0, outputs=dict(loss=loss.detach()))  # goes on
    with pytest.raises(NonFiniteLossError, match='the loss became inf at iteration 42'):
        NonFiniteLossHook().after_train_iter(FakeRunner(), 0, outputs=dict(loss=torch.tensor(float('inf'))))


# ---------------------------------------------------------------- launchers
@contextlib.contextmanager
def port_taken(port):
    """Another job's rendezvous on ``port`` (if something else already holds it, the port is taken anyway)."""
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', port))
        sock.listen()
    except OSError:
        pass
    try:
        yield
    finally:
        sock.close()


def test_dist_test_beside_another_job_prints_its_metrics(tmp_path, cls_data):
    """Bugs: dist_run.sh always used port 29500, so a second job on a node died with EADDRINUSE; and
    tools/test.py's own print of the metrics never ran under dist_test.sh on CPU, because the library left
    the process through os._exit first."""
    cfg = tiny_cls_config(tmp_path, cls_data)
    save_toy_classifier(tmp_path / 'fishnet99_toy.pth')
    with port_taken(29500):
        proc = run_tool('tools/dist_test.sh', cfg, str(tmp_path / 'fishnet99_toy.pth'), '2',
                        '--work-dir', str(tmp_path / 'w'), tool_env=without_launch_env(), timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    printed = re.findall(r"^\{'accuracy/top1': [0-9.]+\}$", proc.stdout, re.M)
    assert len(printed) == 1, proc.stdout[-3000:]  # tools/test.py's last line, from rank 0


def test_dist_run_port(tmp_path, monkeypatch):
    """Bugs: a fixed default port 29500. One machine: torchrun picks a free port (--standalone); several: the
    port of the Slurm job (the same on every node) or PORT. And the Slurm job's port was computed by a formula
    written twice (dist_run.sh and mmfishnet.utils.dist.slurm_master_port), free to drift apart: the shell
    must take the port the Python function gives (its one home)."""
    from mmfishnet.utils.dist import slurm_master_port

    def launch(**env):
        args = tmp_path / 'args'
        # python -c (dist_run.sh asking mmfishnet for the port) runs for real; the launch itself is recorded
        python = fake_command(tmp_path, 'python', f'if [ "$1" = -c ]; then exec {sys.executable} "$@"; fi\n'
                                                  f'echo "$@" > {args}\n') + '/python'
        proc = run_tool('tools/dist_run.sh', 'train.py', '2', 'cfg.py',
                        tool_env=without_launch_env(PYTHON=python, **env))
        assert proc.returncode == 0, proc.stderr
        return args.read_text()

    assert '--standalone' in launch() and 'master_port' not in launch()
    assert '--master_port=1234' in launch(PORT='1234')
    job_a, job_b = launch(NNODES='2', SLURM_JOB_ID='4711'), launch(NNODES='2', SLURM_JOB_ID='4712')
    port_a = int(re.search(r'--master_port=(\d+)', job_a).group(1))
    port_b = int(re.search(r'--master_port=(\d+)', job_b).group(1))
    assert port_a != port_b and port_a != 29500 and 1024 < port_a < 32768  # below Linux's ephemeral ports
    for name in ('PORT', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('SLURM_JOB_ID', '4711')
    assert port_a == int(slurm_master_port())  # what a --launcher slurm task computes for the same job
    # the shell has no formula of its own: a fake package whose function says 4242 decides its port
    fake = tmp_path / 'fakepkg' / 'mmfishnet' / 'utils'
    fake.mkdir(parents=True)
    (fake.parent / '__init__.py').write_text('')
    (fake / '__init__.py').write_text('')
    (fake / 'dist.py').write_text('def slurm_master_port():\n    return "4242"\n')
    args = tmp_path / 'args'
    python = fake_command(tmp_path, 'python', f'if [ "$1" = -c ]; then cd {fake.parent.parent} && '  # -c: cwd first
                                              f'exec {sys.executable} "$@"; fi\necho "$@" > {args}\n') + '/python'
    proc = run_tool('tools/dist_run.sh', 'train.py', '2', 'cfg.py',
                    tool_env=without_launch_env(PYTHON=python, NNODES='2', SLURM_JOB_ID='4711'))
    assert proc.returncode == 0, proc.stderr
    assert '--master_port=4242' in args.read_text()


def test_slurm_run_asks_for_gpus_only_when_told(tmp_path):
    """Bug: slurm_run.sh always asked for --gres=gpu, which partitions without GPUs (or without a gres
    configuration) refuse."""
    def srun_args(**env):
        args = tmp_path / 'args'
        bin_dir = fake_command(tmp_path, 'srun', f'echo "$@" > {args}\n')
        proc = run_tool('tools/slurm_train.sh', 'part', 'job', 'cfg.py', 'work',
                        tool_env=dict(PATH=bin_dir + os.pathsep + os.environ['PATH'], **env))
        assert proc.returncode == 0, proc.stderr
        return args.read_text()

    assert '--gres=gpu:8' in srun_args()
    assert '--gres=gpu:4' in srun_args(GPUS_PER_NODE='4')
    assert '--gres' not in srun_args(GRES='')
    assert '--gres=gpu:a100:2' in srun_args(GRES='gpu:a100:2')


def test_slurm_task_finds_its_master(tmp_path, monkeypatch):
    """Bugs: the first host was read from scontrol's output mixed with its stderr (a warning line became
    MASTER_ADDR), and every job on a node used port 29500."""
    from mmfishnet.utils.dist import prepare_slurm_env
    bin_dir = fake_command(tmp_path, 'scontrol',
                           'echo "scontrol: warning: slurm.conf is old" >&2\nprintf "node-a\\nnode-b\\n"\n')
    monkeypatch.setenv('PATH', bin_dir + os.pathsep + os.environ['PATH'])
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'PORT'):
        monkeypatch.setenv(name, '')  # so that monkeypatch restores what the function sets
        monkeypatch.delenv(name)
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_NODELIST', 'node-[a-b]')
    ports = []
    for job in ('4711', '4712'):
        monkeypatch.setenv('SLURM_JOB_ID', job)
        monkeypatch.delenv('MASTER_PORT', raising=False)
        prepare_slurm_env()
        ports.append(os.environ['MASTER_PORT'])
    assert os.environ['MASTER_ADDR'] == 'node-a'
    assert (os.environ['RANK'], os.environ['WORLD_SIZE']) == ('3', '4')
    assert ports[0] != ports[1] and '29500' not in ports
    monkeypatch.delenv('MASTER_PORT')
    monkeypatch.setenv('PORT', '1234')
    prepare_slurm_env()
    assert os.environ['MASTER_PORT'] == '1234'


# ---------------------------------------------------------------- mmcv's CUDA ops (tools/setup_env.sh)
@pytest.fixture(scope='module')
def check_mmcv():
    spec = importlib.util.spec_from_file_location('check_mmcv', os.path.join(ROOT, 'tools', 'check_mmcv.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mmcv_without_cuda_ops_is_refused_where_torch_sees_a_gpu(check_mmcv, monkeypatch):
    """Bug: setup_env.sh only imported mmcv.ops, so an mmcv built on a GPU-less login node passed on the GPU
    nodes and failed at their first CUDA RoIAlign. Simulated: torch sees a GPU, mmcv compiled no CUDA."""
    import mmcv
    monkeypatch.setattr(check_mmcv, 'compiled_cuda_version', lambda: 'not available')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.delenv('FORCE_CUDA', raising=False)
    assert 'ops on CPU' in check_mmcv.check(mmcv.__version__)  # a CPU machine: fine
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda i=0: 'Fake GPU')
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i=0: (9, 0))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with pytest.raises(check_mmcv.CheckFailed, match=r'sees a GPU \(Fake GPU, sm_90\) but mmcv .* without its CUDA'):
        check_mmcv.check(mmcv.__version__)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setenv('FORCE_CUDA', '1')  # a login-node build for GPU nodes must have compiled them
    with pytest.raises(check_mmcv.CheckFailed, match='FORCE_CUDA=1 but mmcv was built without its CUDA ops'):
        check_mmcv.check(mmcv.__version__)


def test_mmcv_cuda_version_query_that_crashes_does_not_stop_the_check(check_mmcv, monkeypatch):
    """Bug (seen on the lent H200, mmcv 2.1.0 built with nvcc 13.0): mmcv's get_compiling_cuda_version()
    kills its process with a segmentation fault; asked in setup_env's own process it took the set-up down
    though the CUDA ops work. Simulated: an extension with CUDA code whose version query segfaults."""
    monkeypatch.setattr(check_mmcv, '_ext_has_cuda_code', lambda: True)
    monkeypatch.setattr(check_mmcv, 'VERSION_QUERY', 'import ctypes; ctypes.string_at(0)')
    assert check_mmcv.compiled_cuda_version().startswith('unknown (')
    monkeypatch.setattr(check_mmcv, 'VERSION_QUERY', "print('13.0')")
    assert check_mmcv.compiled_cuda_version() == '13.0'


def test_mmcv_built_here_has_no_cuda_code(check_mmcv):
    """The CUDA-code test reads the extension itself: this machine's mmcv was built without CUDA, so a login
    node's build for GPU nodes that lacked them would be told apart the same way."""
    if torch.cuda.is_available():
        pytest.skip("a GPU machine's mmcv is built with its CUDA ops")
    assert check_mmcv.compiled_cuda_version() == 'not available'
    assert check_mmcv.check(__import__('mmcv').__version__).endswith('(no GPU visible)')


def test_mmcv_check_on_this_machine():
    """The check setup_env.sh runs, for real: CPU ops here; on a GPU machine CUDA ops on a CUDA tensor."""
    import mmcv
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'check_mmcv.py'), mmcv.__version__],
                          capture_output=True, text=True)  # with the GPUs this machine has
    assert proc.returncode == 0, proc.stderr
    assert ('ops on CPU and CUDA' if torch.cuda.is_available() else 'ops on CPU') in proc.stdout


def test_mmcv_wheel_key_names_cuda_and_architectures(check_mmcv, monkeypatch):
    """Bug: the wheel cache key said only cpu/cuda, so nodes with another CUDA version or other GPUs reused
    a wheel whose kernels do not fit them."""
    monkeypatch.delenv('FORCE_CUDA', raising=False)
    monkeypatch.delenv('TORCH_CUDA_ARCH_LIST', raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cpu = check_mmcv.wheel_key()
    assert cpu.endswith('-cpu') and f'torch{torch.__version__.split("+")[0]}' in cpu
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda i=0: (8, 0) if i == 0 else (9, 0))
    keys = {}
    for cuda, archs in [('12.1', None), ('12.8', None), ('12.8', '8.6'), ('12.8', '9.0;8.0'), ('12.8', '8.0 9.0')]:
        monkeypatch.setattr(torch.version, 'cuda', cuda)
        if archs is None:
            monkeypatch.delenv('TORCH_CUDA_ARCH_LIST', raising=False)
        else:
            monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', archs)
        keys[cuda, archs] = check_mmcv.wheel_key()
    assert keys['12.1', None] != keys['12.8', None] != keys['12.8', '8.6']
    # the visible GPUs' architectures (8.0 and 9.0) or the same list written otherwise: one wheel
    assert keys['12.8', None] == keys['12.8', '9.0;8.0'] == keys['12.8', '8.0 9.0']
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    monkeypatch.setenv('FORCE_CUDA', '1')
    monkeypatch.delenv('TORCH_CUDA_ARCH_LIST')
    with pytest.raises(check_mmcv.CheckFailed, match='TORCH_CUDA_ARCH_LIST'):
        check_mmcv.wheel_key()


# ---------------------------------------------------------------- pretrained weights from a URL
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """A folder served at http://127.0.0.1:PORT/ (nothing leaves the machine); torch's download cache in tmp."""
    served = tmp_path / 'served'
    served.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def pretrained(checkpoint):
    return dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')


def test_pretrained_from_a_url_loads_with_the_same_checks(http_dir, monkeypatch):
    """Bug: FishNet's Pretrained init_cfg took only local files ('no such checkpoint file' for a URL),
    while mmengine's own loading takes URLs; and --trust-checkpoint did not reach this loading."""
    served, url = http_dir
    for name in (TRUST_ENV, 'LOCAL_RANK'):  # tools/train.py's load_config sets them; restored afterwards
        monkeypatch.setenv(name, '0')
    source = save_toy_classifier(served / 'fishnet99.pth')
    model = FishNet(arch='99', init_cfg=pretrained(f'{url}/fishnet99.pth'))
    model.init_weights()
    assert torch.equal(model.head3.trunk[0].conv2.weight, source.head3.trunk[0].conv2.weight)
    # the strict, named-key checks of local files
    with pytest.raises(CheckpointError, match='does not fit this FishNet .*fishnet99.*another arch'):
        FishNet(arch='150', init_cfg=pretrained(f'{url}/fishnet99.pth')).init_weights()
    with pytest.raises(CheckpointError, match='nowhere.pth cannot be fetched: HTTP Error 404'):
        FishNet(arch='99', init_cfg=pretrained(f'{url}/nowhere.pth')).init_weights()
    # a file holding other Python objects: refused, unless trusted (what --trust-checkpoint sets)
    import argparse
    save_toy_classifier(served / 'with_args.pth', extra={'args': argparse.Namespace(lr=0.1)})
    with pytest.raises(CheckpointError, match='argparse.Namespace object.*If you trust this file, pass '
                                              '--trust-checkpoint'):
        FishNet(arch='99', init_cfg=pretrained(f'{url}/with_args.pth')).init_weights()
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    try:
        import train
    finally:
        sys.path.remove(os.path.join(ROOT, 'tools'))
    from mmfishnet.utils.runner_setup import load_config  # what tools/train.py's main reads the config with
    load_config(train.parse_args([os.path.join(ROOT, 'configs/toy/fishnet99_1xb16_toy-cls.py'),
                                        '--trust-checkpoint']))
    FishNet(arch='99', init_cfg=pretrained(f'{url}/with_args.pth')).init_weights()
    FishNet(arch='99', init_cfg=pretrained(str(served / 'with_args.pth'))).init_weights()


TWO_RANKS_LOAD_A_URL = """
import datetime, os, sys
import torch.distributed as dist

rank, url, store = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group('gloo', init_method='file://' + store, rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=30))  # a collective out of step fails, not hangs
barriers, barrier = [], dist.barrier

def counted(*args, **kwargs):  # mmengine's load_from_http calls torch.distributed.barrier()
    barriers.append(1)
    return barrier(*args, **kwargs)

dist.barrier = counted
from mmfishnet.models import FishNet
FishNet(arch='99', init_cfg=dict(type='Pretrained', checkpoint=url, prefix='backbone.')).init_weights()
counts = [None, None]
dist.all_gather_object(counts, len(barriers))
print('barriers per rank:', counts, flush=True)
dist.destroy_process_group()
os._exit(0)  # no interpreter finalization after a gloo group (see test_a_rank_ends_without_finalizing...)
"""


def test_two_ranks_load_a_trusted_url_checkpoint_in_step(http_dir, tmp_path):
    """Bug (#19, item 4): a Pretrained URL holding more than tensors, with --trust-checkpoint, was fetched
    twice through mmengine's load_from_http (weights_only=True, then the trusted retry). Rank 0 downloads
    before mmengine's barrier and the other ranks after it, so rank 0 failed and retried before its barrier
    while rank 1 failed and retried after it: rank 1 reached the barrier twice, rank 0 once, and the next
    collective (here an all_gather_object, in training DDP's broadcast) met a barrier. Two gloo ranks on
    CPU, the checkpoint served on 127.0.0.1; each must reach the barrier once."""
    import argparse
    served, url = http_dir
    save_toy_classifier(served / 'with_args.pth', extra={'args': argparse.Namespace(lr=0.1)})
    script = tmp_path / 'rank.py'
    script.write_text(TWO_RANKS_LOAD_A_URL)
    env = dict(os.environ, PYTHONPATH=ROOT, **{TRUST_ENV: '1'})  # what --trust-checkpoint sets
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), f'{url}/with_args.pth',
                               str(tmp_path / 'store')], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=180))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0 and out.splitlines()[-1] == 'barriers per rank: [1, 1]', (out + err)[-3000:]


# ---------------------------------------------------------------- errors in the middle of a run
def deep_in_a_run():
    np.ones(2) / np.zeros(2)


def test_unexpected_error_keeps_its_traceback(capsys, tmp_path):
    """Bug: run_cli turned every FileNotFoundError, PermissionError and FloatingPointError raised anywhere
    in a run into one line without a traceback (here numpy's, not the project's non-finite-loss check)."""
    from mmengine.logging import MMLogger
    log_file = tmp_path / 'run.log'
    MMLogger.get_instance('test_cluster_run', log_file=str(log_file))

    def main():
        with np.errstate(divide='raise'):
            deep_in_a_run()

    assert run_cli(main) == 1
    err = capsys.readouterr().err
    assert 'Traceback' in err and 'in deep_in_a_run' in err
    last = err.strip().splitlines()[-1]
    assert last.startswith('error: unexpected FloatingPointError at ') and 'test_cluster.py:' in last
    assert str(log_file) in last and 'in deep_in_a_run' in log_file.read_text()

    def missing_image():
        open(tmp_path / 'gone.jpg', 'rb')

    assert run_cli(missing_image) == 1
    assert 'Traceback' in capsys.readouterr().err


@pytest.mark.parametrize('error', [UserError('train data: data/coco/ does not exist'),
                                   CheckpointError('x.pth cannot be read as a torch checkpoint'),
                                   NonFiniteLossError('the loss became nan at iteration 2')])
def test_project_checks_stay_one_line(capsys, error):
    """The project's own checks (and only they) speak in one line with exit code 2."""
    def main():
        raise error

    assert run_cli(main) == 2
    err = capsys.readouterr().err
    assert err == f'error: {error}\n'


@pytest.mark.parametrize('error,debug', [(KeyboardInterrupt(), ''), (NonFiniteLossError('nan'), '1')])
def test_an_interrupted_rank_still_closes_its_process_group(monkeypatch, error, debug):
    """Bug: with run_cli's exit codes computed in a helper, what the helper lets through (Ctrl-C, or every
    error under MMFISHNET_DEBUG=1) left the process group open, the state in which a gloo rank aborts at
    exit; the group must be closed at once (no barrier: the other ranks may be gone) and the error go on."""
    from mmfishnet.utils import dist as dist_utils
    calls = []
    monkeypatch.setattr(dist_utils, 'teardown_distributed', lambda wait=True: calls.append(wait))
    monkeypatch.setenv('MMFISHNET_DEBUG', debug)

    def main():
        raise error

    with pytest.raises(type(error)):
        run_cli(main)
    assert calls == [False]
