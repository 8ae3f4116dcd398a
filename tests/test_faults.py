"""Cluster faults on CPU (issue 19): a lost rank restarts by itself under MAX_RESTARTS, SIGTERM saves and
stops every rank for a requeue that resumes by itself, a kill loses at most the interval of the "latest"
checkpoint, and two torchrun agents on this machine train as one machine does. Each run ends with the
weights of the uninterrupted 2-process run, exactly, as the resume-equality tests of test_reliability.py."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from helpers import ROOT, cpu_tool_env, fake_command, run_tool, tiny_cls_config, toy_cls_data
from mmfishnet.engine import REQUEUE_EXIT_CODE, TrainingInterrupted
from mmfishnet.utils.checkpoint import is_complete_checkpoint

INTERVAL = 4  # iterations between "latest" checkpoints: a kill loses at most this many
KILL_AT = 'Epoch(train) [2][4/6]'  # rank 0 has finished iteration 10, mid-epoch 2; the newest latest is at 8
EXTRA = """
custom_hooks = [dict(type='RandomStateHook'), dict(type='LatestCheckpointHook', interval={interval})]
randomness = dict(seed=0, diff_rank_seed=True)
train_dataloader = dict(batch_size=4, dataset=dict(data_root={data_root!r}))
"""


@pytest.fixture(scope='module')
def cls_data(tmp_path_factory):
    return toy_cls_data(tmp_path_factory, 'toy_cls_faults', num_train=12, num_val=2)


@pytest.fixture(scope='module')
def cfg(tmp_path_factory, cls_data):
    """2 epochs of 6 iterations on 2 ranks of 4 images, a latest checkpoint every 4 iterations."""
    return tiny_cls_config(tmp_path_factory.mktemp('faults_cfg'), cls_data, epochs=2,
                           extra=EXTRA.format(interval=INTERVAL, data_root=str(cls_data)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def reference(tmp_path_factory, cfg):
    """The uninterrupted 2-process run on one machine: its final checkpoint."""
    work = tmp_path_factory.mktemp('faults_ref')
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(work))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return work / 'epoch_2.pth'


def assert_same_weights(reference, path):
    a = torch.load(reference, map_location='cpu')['state_dict']
    b = torch.load(path, map_location='cpu')['state_dict']
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class Job:
    """A launch started in its own session, its output collected by a thread."""

    def __init__(self, cmd, **env):
        import threading
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=cpu_tool_env(**env), start_new_session=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def output(self):
        return ''.join(self.lines)

    def finish(self, timeout=900):
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=60)
        return self.proc.returncode, self.output()


def wait_for(jobs, text, timeout=600):
    """Wait until one of ``jobs`` printed ``text``."""
    deadline = time.time() + timeout
    while not any(text in job.output() for job in jobs):
        assert time.time() < deadline, f'no {text!r} within {timeout} s'
        assert all(job.proc.poll() is None for job in jobs), 'ended before ' + text + ':\n' + \
            ''.join(job.output()[-3000:] for job in jobs)
        time.sleep(0.2)


def dist_train(*args):
    return ['bash', os.path.join(ROOT, 'tools/dist_train.sh'), *args]


def worker_pids(agent_pid):
    """{rank: pid} of the worker processes torchrun ``agent_pid`` started (its children, by their RANK)."""
    found = {}
    for name in os.listdir('/proc'):
        try:
            with open(f'/proc/{name}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            if ppid != agent_pid:
                continue
            with open(f'/proc/{name}/environ', 'rb') as f:
                env = dict(item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item)
        except (OSError, ValueError, IndexError):
            continue
        if b'RANK' in env:
            found[int(env[b'RANK'])] = int(name)
    return found


def resumed_iteration(output):
    found = re.findall(r'resumed epoch: \d+, iter: (\d+)', output)
    assert found, output[-3000:]
    return int(found[-1])


def test_rank_killed_under_max_restarts_resumes_by_itself(tmp_path, cfg, reference):
    """Bug: a lost rank ended the run, and someone had to notice it and restart it with --resume. Under
    MAX_RESTARTS=1, rank 1 SIGKILLed mid-epoch: torchrun restarts the group, which resumes from the latest
    checkpoint of this launch by itself, losing at most INTERVAL iterations, and ends as the uninterrupted run."""
    work = tmp_path / 'work'
    job = Job(dist_train(cfg, '2', '--work-dir', str(work)), MAX_RESTARTS='1')
    wait_for([job], KILL_AT)
    os.kill(worker_pids(job.proc.pid)[1], signal.SIGKILL)
    code, out = job.finish()
    assert code == 0, out[-4000:]
    assert f"this launch was restarted: resuming from {work / 'latest.pth'}" in out
    assert 10 - resumed_iteration(out) <= INTERVAL
    assert_same_weights(reference, work / 'epoch_2.pth')


def test_kill_between_latest_checkpoints_loses_at_most_the_interval(tmp_path, cfg, reference):
    """Bug: the work since the last epoch checkpoint was lost (up to a whole epoch), and mmengine's epoch loop
    restarts an epoch on resume. The whole job SIGKILLed between two latest checkpoints mid-epoch: --resume
    continues epoch 2 at iteration 8 (the latest checkpoint), neither repeating nor skipping a batch."""
    work = tmp_path / 'work'
    job = Job(dist_train(cfg, '2', '--work-dir', str(work)))
    wait_for([job], KILL_AT)
    workers = worker_pids(job.proc.pid)  # torchrun starts them in sessions of their own
    os.killpg(job.proc.pid, signal.SIGKILL)
    for pid in workers.values():
        os.kill(pid, signal.SIGKILL)
    job.finish()
    assert not (work / 'epoch_2.pth').exists()
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', str(work), '--resume')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'resumed epoch: 1, iter: 8' in proc.stdout + proc.stderr  # mid-epoch 2, the kill lost 2 iterations
    assert_same_weights(reference, work / 'epoch_2.pth')


def slurm_tasks(cfg, work, job_id, port):
    """Two tasks as ``srun`` starts them for tools/slurm_train.sh (``--launcher slurm``, Slurm's variables)."""
    jobs = []
    for rank in (0, 1):
        jobs.append(Job([sys.executable, '-u', os.path.join(ROOT, 'tools/train.py'), cfg, '--work-dir', str(work),
                         '--launcher', 'slurm'],
                        SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS='2', SLURM_JOB_ID=job_id,
                        SLURM_STEP_ID='0', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), PORT=None,
                        PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))  # as torchrun sets for the reference's processes
    return jobs


def test_sigterm_saves_on_every_rank_and_the_requeued_job_resumes(tmp_path, cfg, reference):
    """Bugs: SIGTERM (Slurm's preemption and time limit) ended the run with the work since the last epoch
    lost, and a requeued job started again from the beginning. SIGTERM reaches rank 1 alone mid-epoch: the
    ranks agree, save the latest checkpoint at the same iteration boundary and exit with 143; the same
    command run again in the same Slurm job (a requeue keeps the job id) resumes from it by itself."""
    work, job_id, port = tmp_path / 'work', str(4000 + os.getpid() % 1000), free_port()
    rank0, rank1 = slurm_tasks(cfg, work, job_id, port)
    wait_for([rank0], KILL_AT)
    rank1.proc.send_signal(signal.SIGTERM)
    (code0, out0), (code1, out1) = rank0.finish(), rank1.finish()
    assert (code0, code1) == (143, 143), out0[-3000:] + out1[-3000:]
    stopped = re.findall(r'error: training stopped on SIGTERM after iteration (\d+), saved in (\S+);', out0 + out1)
    assert len(stopped) == 2 and stopped[0] == stopped[1], out0[-3000:] + out1[-3000:]
    assert stopped[0][1] == str(work / 'latest.pth') and is_complete_checkpoint(stopped[0][1])
    assert not (work / 'epoch_2.pth').exists()
    requeued = slurm_tasks(cfg, work, job_id, free_port())
    (code0, out0), (code1, _) = [job.finish() for job in requeued]
    assert (code0, code1) == (0, 0), out0[-3000:]
    assert resumed_iteration(out0) == int(stopped[0][0])  # nothing lost
    assert_same_weights(reference, work / 'epoch_2.pth')


def test_requeue_exit_code_only_after_slurms_warning():
    """SIGUSR1 (srun --signal, before the time limit) asks for a requeue, and tools/slurm_train.sh waits for
    the same code; SIGTERM exits as a process it killed (a cancelled job must not be requeued)."""
    assert TrainingInterrupted('', signal.SIGUSR1).exit_code == REQUEUE_EXIT_CODE == 75
    assert TrainingInterrupted('', signal.SIGTERM).exit_code == 128 + signal.SIGTERM
    with open(os.path.join(ROOT, 'tools/slurm_lib.sh')) as f:  # what slurm_train.sh and slurm_sbatch.sh read
        assert re.search(rf'^REQUEUE_EXIT_CODE={REQUEUE_EXIT_CODE}$', f.read(), re.M)


def test_slurm_train_asks_for_the_warning_and_requeues(tmp_path):
    """Bug: slurm_train.sh asked Slurm for no warning before the time limit, and a stopped run stayed
    stopped. srun gets --signal=USR1@SIGNAL_SECONDS; on exit code 75, a batch job is requeued (scontrol
    requeue with its id), and a run started from a login node runs srun again with --resume."""
    calls = tmp_path / 'calls'
    codes = tmp_path / 'codes'  # the exit codes the fake srun returns, one per call
    bin_dir = fake_command(tmp_path, 'srun', f'echo "srun $*" >> {calls}\ncode=$(head -1 {codes})\n'
                                             f'sed -i 1d {codes}\nexit $code\n')
    fake_command(tmp_path, 'scontrol', f'echo "scontrol $*" >> {calls}\n')

    def slurm_train(exit_codes, **env):
        calls.write_text('')
        codes.write_text(''.join(f'{c}\n' for c in exit_codes))
        base = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
        proc = subprocess.run(['bash', os.path.join(ROOT, 'tools/slurm_train.sh'), 'part', 'job', 'cfg.py', 'work'],
                              capture_output=True, text=True,
                              env=dict(base, PATH=bin_dir + os.pathsep + os.environ['PATH'], **env))
        return proc.returncode, calls.read_text().splitlines()

    code, lines = slurm_train([REQUEUE_EXIT_CODE, 0], SIGNAL_SECONDS='600')  # from a login node
    assert code == 0 and len(lines) == 2 and '--signal=USR1@600' in lines[0], lines
    assert lines[0].endswith('--work-dir=work --launcher slurm')
    assert lines[1].endswith('--work-dir=work --resume --launcher slurm')
    code, lines = slurm_train([REQUEUE_EXIT_CODE], SLURM_JOB_ID='4711')  # inside a batch job
    assert code == REQUEUE_EXIT_CODE and lines[1] == 'scontrol requeue 4711', lines
    assert '--signal=USR1@300' in lines[0]
    code, lines = slurm_train([143], SLURM_JOB_ID='4711')  # SIGTERM: cancelled or preempted, not requeued here
    assert code == 143 and len(lines) == 1, lines
    code, lines = slurm_train([0], SIGNAL_SECONDS='0')
    assert '--signal' not in lines[0]


def test_slurm_scripts_in_an_allocation_say_what_holds(tmp_path):
    """Bugs (issue 23, items 1 and 9): slurm_train.sh run inside an allocation asked srun for --signal, which
    srun ignores there, without a word; and where Slurm refused the requeue (an interactive allocation,
    JobRequeue=0) it said "resubmit this job", whose new job id does not resume and later overwrites
    latest.pth. Now: one line pointing to tools/slurm_sbatch.sh, and on a refused requeue the command that
    resumes (--resume, the same work dir), never "resubmit"."""
    bin_dir = fake_command(tmp_path, 'srun', 'exit 75\n')
    fake_command(tmp_path, 'scontrol', 'echo "Requested operation is presently disabled" >&2\nexit 1\n')
    env = dict({k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}, SLURM_JOB_ID='4711',
               SLURM_NTASKS='2', PATH=bin_dir + os.pathsep + os.environ['PATH'], MMFISHNET_ROOT=ROOT)
    train = subprocess.run(['bash', os.path.join(ROOT, 'tools/slurm_train.sh'), 'part', 'job', 'cfg.py', 'work'],
                           capture_output=True, text=True, env=env)
    sbatch = subprocess.run(['bash', os.path.join(ROOT, 'tools/slurm_sbatch.sh'), 'cfg.py', 'work', '--amp'],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert 'srun ignores --signal' in train.stderr and 'tools/slurm_sbatch.sh' in train.stderr, train.stderr
    for proc, resume in [(train, 'bash tools/slurm_train.sh part job cfg.py work --resume'),
                         (sbatch, 'tools/slurm_sbatch.sh cfg.py work --amp --resume')]:
        assert proc.returncode == REQUEUE_EXIT_CODE, proc.stderr
        assert 'refused to requeue job 4711' in proc.stderr and resume in proc.stderr, proc.stderr
        assert 'resubmit' not in proc.stderr, proc.stderr


def two_agents(cfg, work, port, **env):
    # one thread each, as torchrun sets for the reference's 2 processes on one machine (it leaves a single
    # process per machine all the cores, whose other summation order changes the weights' last bits)
    return [Job(dist_train(cfg, '1', '--work-dir', str(work)), NNODES='2', NODE_RANK=str(node),
                MASTER_ADDR='127.0.0.1', PORT=str(port), OMP_NUM_THREADS='1', **env) for node in (0, 1)]


def test_two_agents_match_one_machine_and_restart_a_lost_worker(tmp_path, cfg, reference):
    """Two machines simulated by two torchrun agents on this one (NNODES=2, NODE_RANK=0/1, gloo on
    127.0.0.1): they train as the 2-process run on one machine does. Then, under MAX_RESTARTS=1, the worker of
    the second agent is SIGKILLed mid-epoch: both agents restart their workers, every rank decides alike to
    resume from this launch's latest checkpoint (from the files: torchrun counts a restart only on a machine
    whose workers failed), and the job completes by itself with the same weights (each rendezvous round's
    group meets in a fresh store hosted by worker rank 0: tools/dist_run.sh, tests/test_restarts.py)."""
    agents = two_agents(cfg, tmp_path / 'two', free_port())
    results = [agent.finish() for agent in agents]
    assert [code for code, _ in results] == [0, 0], results[0][1][-3000:] + results[1][1][-3000:]
    assert_same_weights(reference, tmp_path / 'two' / 'epoch_2.pth')

    work = tmp_path / 'restarted'
    agents = two_agents(cfg, work, free_port(), MAX_RESTARTS='1', RUN_ID=f'faults-{os.getpid()}')
    wait_for(agents, KILL_AT)
    (worker, ) = worker_pids(agents[1].proc.pid).values()  # its rank is the rendezvous' choice
    os.kill(worker, signal.SIGKILL)
    results = [agent.finish() for agent in agents]
    out = results[0][1] + results[1][1]
    assert [code for code, _ in results] == [0, 0], out[-6000:]
    assert out.count(f"this launch was restarted: resuming from {work / 'latest.pth'}") == 2, out[-6000:]
    assert 10 - resumed_iteration(out) <= INTERVAL
    assert_same_weights(reference, work / 'epoch_2.pth')


class _ClockRunner:
    """What LatestCheckpointHook reads of a runner in a single-process run, recording its saves."""

    def __init__(self, work_dir):
        import logging
        self.work_dir, self.iter, self.epoch, self.rank, self.hooks = str(work_dir), 0, 0, 0, []
        self.logger, self.train_loop, self.saves = logging.getLogger('test'), None, []

    def save_checkpoint(self, out_dir, filename, **kwargs):
        self.saves.append((self.iter + 1, filename))


def test_latest_checkpoint_every_so_many_minutes(tmp_path, monkeypatch):
    """The configs save the latest checkpoint by time (minutes=20; docs/fault_tolerance.md bounds the lost
    work by it). Catches a wrong unit or a clock not reset by a save: with minutes=20 and a fake clock moving
    7 minutes an iteration, saves come at the 3rd and 6th iteration (21 minutes after the start and after
    the previous save), and only there."""
    from mmfishnet.engine import LatestCheckpointHook, fault_tolerance
    now = [1000.0]
    monkeypatch.setattr(fault_tolerance.time, 'monotonic', lambda: now[0])
    hook, runner = LatestCheckpointHook(minutes=20, signals=()), _ClockRunner(tmp_path)
    hook.before_train(runner)
    for it in range(7):
        now[0] += 7 * 60
        runner.iter = it
        hook.after_train_iter(runner, it)
    hook.after_train(runner)
    assert runner.saves == [(3, 'latest.pth'), (6, 'latest.pth')]
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'latest.pth')


def slurm(tmp_path):
    """The Slurm imitation of tests/slurm_imitation.py on PATH: (its module, the environment of commands)."""
    import slurm_imitation
    env = cpu_tool_env(**slurm_imitation.install(str(tmp_path / 'bin'), str(tmp_path / 'slurm')),
                       MMFISHNET_ROOT=ROOT, PORT=str(free_port()), FAKE_SLURM_KILLWAIT='10',
                       OMP_NUM_THREADS='1')  # one thread a task, as torchrun sets for the reference's processes
    return slurm_imitation, env


def sbatch(env, *args):
    proc = subprocess.run(['sbatch', *args], capture_output=True, text=True, env=env, cwd=env['FAKE_SLURM_DIR'])
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


def wait_in_file(imitation, job, path, text, timeout=600):
    """Wait until the output file of a job of the Slurm imitation shows ``text``."""
    deadline = time.time() + timeout
    while not (os.path.exists(path) and text in open(path).read()):
        assert imitation.job_state(job) is None, f'job {job} ended without {text!r}:\n' + open(path).read()[-3000:]
        assert time.time() < deadline, f'no {text!r} in {path} within {timeout} s'
        time.sleep(0.2)


def test_batch_job_past_its_time_limit_finishes_by_itself(tmp_path, cfg, reference):
    """Bugs (issue 23, items 1 and 2): a batch job never got the warning signal (srun --signal inside an
    allocation is ignored), was killed at its time limit (SIGTERM to srun, which forwards it as SIGKILL),
    saved nothing and was not requeued. Submitted with tools/slurm_sbatch.sh to the Slurm imitation
    (tests/slurm_imitation.py: what it follows of Slurm's manuals and what it simplifies), 2 tasks, the
    time limit reached mid-epoch 2: the warning (sbatch --signal, here 20 s before the limit, overriding
    the script's #SBATCH line) reaches both tasks, which save and exit 75; the script requeues the job,
    which keeps its id, runs again (SLURM_RESTART_COUNT=1, step 0 again), resumes by itself and ends with
    the uninterrupted run's weights. Then a new job (a new id) into the same work dir starts afresh: a new
    launch never resumes another launch's checkpoint unless asked."""
    imitation, env = slurm(tmp_path)
    work = tmp_path / 'work'
    job = sbatch(env, '-p', 'cpu', '--ntasks=2', '--time=30:00', '--signal=USR1@20',
                 os.path.join(ROOT, 'tools/slurm_sbatch.sh'), cfg, str(work))
    log = os.path.join(env['FAKE_SLURM_DIR'], f'slurm-{job}.out')
    wait_in_file(imitation, job, log, KILL_AT)
    imitation.skip_to_warning(job)
    assert imitation.wait_for_job(job, timeout=900) == 'COMPLETED', open(log).read()[-4000:]
    out = open(log).read()
    assert f'slurm_sbatch.sh: job {job}, run 1, 2 tasks' in out  # --open-mode=append: both runs' output
    assert f'requeueing job {job}' in out and f'slurm_sbatch.sh: job {job}, run 2' in out, out[-4000:]
    stopped = re.findall(r'training stopped on SIGUSR1 after iteration (\d+), saved in (\S+);', out)
    assert len(stopped) == 2 and stopped[0] == stopped[1] and stopped[0][1] == str(work / 'latest.pth'), out
    assert out.count(f"this launch was restarted: resuming from {work / 'latest.pth'}") == 2, out[-4000:]
    assert resumed_iteration(out) == int(stopped[0][0])  # nothing lost
    assert_same_weights(reference, work / 'epoch_2.pth')

    again = sbatch(env, '-p', 'cpu', '--ntasks=2', os.path.join(ROOT, 'tools/slurm_sbatch.sh'), cfg, str(work))
    log = os.path.join(env['FAKE_SLURM_DIR'], f'slurm-{again}.out')
    wait_in_file(imitation, again, log, 'Epoch(train) [1][1/6]')
    subprocess.run(['scancel', str(again)], env=env, check=True)
    assert imitation.wait_for_job(again, timeout=120) == 'CANCELLED'
    assert 'resuming' not in open(log).read()


def test_a_new_torchrun_launch_does_not_resume(tmp_path, cfg, reference):
    """Guarantee without a test until issue 23: a new launch never resumes another launch's checkpoint unless
    asked. A new tools/dist_train.sh launch (a new torchrun run id) into a work dir whose newest checkpoint
    another torchrun launch wrote (the reference run's epoch_2.pth) starts from iteration 1."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_2.pth').symlink_to(reference)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    job = Job(dist_train(cfg, '2', '--work-dir', str(work)))
    wait_for([job], 'Epoch(train) [1][1/6]')
    workers = worker_pids(job.proc.pid)
    os.killpg(job.proc.pid, signal.SIGKILL)
    for pid in workers.values():
        os.kill(pid, signal.SIGKILL)
    _, out = job.finish()
    assert 'resuming' not in out and 'resumed epoch' not in out, out[-3000:]


def test_the_resume_decision_is_rank_0s(tmp_path):
    """Bug (issue 23, item 8): each rank decided alone whether to resume, so a rank that could not read the
    checkpoint, or saw a stale copy of the work dir on a shared file system, started afresh while the others
    resumed, and their collectives no longer matched. Two gloo ranks of one Slurm job whose views of the work
    dir differ (rank 1's is empty): both take rank 0's answer, this job's checkpoint."""
    views = [tmp_path / 'rank0', tmp_path / 'rank1']
    for view in views:
        view.mkdir()
    ckpt = views[0] / 'latest.pth'
    torch.save({'meta': {'launch_id': 'slurm:4711.0'}, 'state_dict': {}}, ckpt)
    (views[0] / 'last_checkpoint').write_text(str(ckpt))
    script = ('import os, sys, torch.distributed as dist\n'
              "dist.init_process_group('gloo')\n"
              'from mmfishnet.utils.dist import checkpoint_of_this_launch\n'
              "print('decided', checkpoint_of_this_launch(sys.argv[1]), flush=True)\n"
              'dist.destroy_process_group()\n')
    port = free_port()
    procs = [subprocess.Popen([sys.executable, '-c', script, str(views[rank])], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                              env=cpu_tool_env(RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                                               MASTER_PORT=str(port), SLURM_JOB_ID='4711', SLURM_STEP_ID='0',
                                               PYTHONPATH=ROOT, TORCHELASTIC_RUN_ID=None))
             for rank in (0, 1)]
    outs = [proc.communicate(timeout=300)[0] for proc in procs]
    for out in outs:
        assert f'decided {ckpt}' in out, outs
