"""A Slurm imitation on one machine for the tests: ``sbatch``, ``srun``, ``scontrol`` and ``scancel`` as
commands on PATH (:func:`install`), with a controller process per batch job. It follows Slurm's documented
behaviour on the points the fault-tolerance tests depend on:

- ``sbatch`` reads ``#SBATCH`` lines before the first command of the script; its own command-line options
  win over them. It prints ``Submitted batch job <id>`` and returns; the job runs a *copy* of the script
  (Slurm runs the script from its spool directory) in the submit directory, its output in
  ``slurm-<id>.out``, appended to by a requeued run only with ``--open-mode=append`` (sbatch(1): "#SBATCH
  before any executable commands", "slurm-%j.out", "runs a single copy of the batch script",
  http://manpages.ubuntu.com/manpages/bionic/en/man1/sbatch.1.html).
- ``--signal=[B:]SIG@SECONDS`` (sbatch's) sends SIG to every process of the job's steps SECONDS before the
  time limit, not to the batch shell unless ``B:`` (sbatch(1), --signal; "If no duration is specified, a
  signal will be sent 60s before", the criann page below). ``srun --signal`` inside an allocation is
  ignored: srun(1) says the option "applies to job allocations", which an srun inside an sbatch job does not
  create (quoted from issue 23; the search tool here did not return srun's manual page to re-read it).
- At the time limit (and on ``scancel`` without ``-s``) SIGTERM goes to the steps' processes and to the
  batch step (the batch shell and the srun processes in it), SIGKILL follows after KillWait
  (``FAKE_SLURM_KILLWAIT`` seconds here; 30 by default in slurm.conf) ("Slurm sends a SIGTERM signal to all
  processes ... about 30s ... SIGKILL",
  https://services.criann.fr/en/services/hpc/mesonet-project/guide/signals-sent-by-slurm/). srun, on
  SIGTERM, forwards SIGKILL to its tasks (srun's signal handling: "forcing job termination"; issue 23
  read it in srun's source, not in its manual). Other signals srun receives go to its tasks as they are.
  ``scancel -s SIG`` signals the steps only, not the batch shell (scancel(1): without --batch/--full).
- ``--kill-on-bad-exit``: when a task exits non-zero, the others get SIGTERM, then SIGKILL after KillWait
  (Slurm 17.11 NEWS, quoted in open-mpi/ompi#3717); srun's exit code is the highest of its tasks' (128 + the
  signal for a task a signal ended).
- ``scontrol requeue <id>`` marks a batch job submitted with ``--requeue`` (or with JobRequeue=1, the
  default, and no ``--no-requeue``; ``FAKE_SLURM_JOBREQUEUE=0`` imitates JobRequeue=0) for a restart once
  its batch shell ends: the same job id, ``SLURM_RESTART_COUNT`` one higher, step ids from 0 again, the time
  limit counted anew. Other jobs (an allocation that is not a batch job) are refused.
- ``scontrol show hostnames`` prints ``localhost``.

What it simplifies: one node; the processes of a step are its tasks' process groups (each task in a session
of its own, its data-loading workers in its group), where Slurm tracks them in a cgroup; time is real time
plus an offset the test may add (:func:`skip_to_warning`) instead of Slurm's clock; the signal is sent at
exactly SECONDS before the limit (Slurm may send it up to 60 s earlier); no queueing, no accounting, no
partitions, no resources (``-p``, ``--gres``, ``--time`` are read but only ``--time`` acts); scancel of a
job that is not running is an error.
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import time

POLL = 0.1
_installed = {}  # the state folder of install(), for the functions a test calls in its own process


def install(bin_dir, state_dir) -> dict:
    """Put ``sbatch``, ``srun``, ``scontrol`` and ``scancel`` in ``bin_dir`` (state in ``state_dir``);
    returns the environment entries that make them the ones found."""
    os.makedirs(bin_dir, exist_ok=True)
    os.makedirs(state_dir, exist_ok=True)
    _installed['state'] = str(state_dir)
    for name in ('sbatch', 'srun', 'scontrol', 'scancel'):
        path = os.path.join(bin_dir, name)
        with open(path, 'w') as f:
            f.write(f'#!/usr/bin/env bash\nexec {shlex.quote(sys.executable)} {shlex.quote(__file__)} {name} "$@"\n')
        os.chmod(path, 0o755)
    return dict(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_DIR=str(state_dir))


# ------------------------------------------------------------------------------------------ job state files
def _job_dir(job) -> str:
    return os.path.join(os.environ.get('FAKE_SLURM_DIR') or _installed['state'], f'job{job}')


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _write(path, text) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def job_info(job) -> dict:
    return json.loads(_read(os.path.join(_job_dir(job), 'job.json')))


def job_state(job):
    """None while the job runs, else its final state ('COMPLETED', 'FAILED 2', 'TIMEOUT', 'CANCELLED')."""
    return _read(os.path.join(_job_dir(job), 'state'))


def skip_to_warning(job) -> None:
    """Move the job's clock to the moment its warning signal is due (the time limit minus --signal's
    SECONDS): the warning goes out at once, the time limit SECONDS later."""
    info, run = job_info(job), json.loads(_read(os.path.join(_job_dir(job), 'run.json')))
    elapsed = time.time() - run['start']
    _write(os.path.join(_job_dir(job), 'offset'), str(info['limit'] - info['signal'][1] - elapsed))


def _seconds(text) -> int:
    """Slurm's --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]."""
    days = 0
    if '-' in text:
        d, text = text.split('-', 1)
        days, parts = int(d), [int(p) for p in text.split(':')]
        parts += [0] * (3 - len(parts))
        return ((days * 24 + parts[0]) * 60 + parts[1]) * 60 + parts[2]
    parts = [int(p) for p in text.split(':')]
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]


def _signal_spec(text):
    """--signal=[B:]SIG[@SECONDS] -> (to the batch shell too, signal number, seconds; 60 without @)."""
    batch = text.startswith('B:')
    text = text[2:] if batch else text
    name, _, when = text.partition('@')
    num = int(name) if name.isdigit() else getattr(signal, name if name.startswith('SIG') else 'SIG' + name)
    return batch, int(num), int(when or 60)


def _parse_options(args):
    """(options {name: value}, the rest) of sbatch/srun style arguments, up to the first non-option."""
    options, i = {}, 0
    short = {'-p': 'partition', '-n': 'ntasks', '-t': 'time', '-J': 'job-name', '-c': 'cpus-per-task'}
    while i < len(args) and args[i].startswith('-'):
        arg = args[i]
        if arg.startswith('--'):
            name, eq, value = arg[2:].partition('=')
            if not eq:
                value = True
            options[name] = value
        else:
            options[short.get(arg, arg)] = args[i + 1]
            i += 1
        i += 1
    return options, args[i:]


# ------------------------------------------------------------------------------------------------- sbatch
def sbatch(args) -> int:
    cmdline, rest = _parse_options(args)
    script, script_args = rest[0], rest[1:]
    options = {}
    with open(script) as f:
        for line in f.read().splitlines()[1:]:
            if line.strip() and not line.startswith('#'):
                break  # the first command: sbatch reads no #SBATCH line after it
            if line.startswith('#SBATCH'):
                options.update(_parse_options(shlex.split(line[len('#SBATCH'):]))[0])
    options.update(cmdline)  # the command line wins
    state = os.environ['FAKE_SLURM_DIR']
    counter = os.path.join(state, 'last_job_id')
    job = int(_read(counter, '1000')) + 1
    _write(counter, str(job))
    os.makedirs(_job_dir(job))
    spool = os.path.join(_job_dir(job), 'slurm_script')
    with open(script) as f, open(spool, 'w') as g:
        g.write(f.read())
    info = dict(job=job, args=script_args, submit_dir=os.getcwd(), env=dict(os.environ),
                ntasks=int(options.get('ntasks', 1)), partition=options.get('partition', 'debug'),
                limit=_seconds(options.get('time', '60')),
                signal=_signal_spec(options['signal']) if 'signal' in options else None,
                requeue=options.get('requeue') is True or (
                    os.environ.get('FAKE_SLURM_JOBREQUEUE', '1') != '0' and 'no-requeue' not in options),
                append=options.get('open-mode') == 'append', options=options)
    _write(os.path.join(_job_dir(job), 'job.json'), json.dumps(info))
    subprocess.Popen([sys.executable, __file__, '_controller', str(job)], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f'Submitted batch job {job}')
    return 0


def _killpg(pgid, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _step_groups(job):
    """The process groups of the tasks of every step of the job's current run."""
    folder = os.path.join(_job_dir(job), 'steps')
    groups = []
    for name in os.listdir(folder) if os.path.isdir(folder) else ():
        groups += [int(g) for g in (_read(os.path.join(folder, name), '') or '').split()]
    return groups


def controller(job) -> int:
    """The job's life: runs of its batch script until one ends without a requeue."""
    info = job_info(job)
    folder = _job_dir(job)
    kill_wait = float(os.environ.get('FAKE_SLURM_KILLWAIT', info['env'].get('FAKE_SLURM_KILLWAIT', '30')))
    restarts = 0
    out_path = os.path.join(info['submit_dir'], f'slurm-{job}.out')
    while True:
        for name in ('offset', 'requeue', 'cancel', 'step_counter'):
            if os.path.exists(os.path.join(folder, name)):
                os.unlink(os.path.join(folder, name))
        steps = os.path.join(folder, 'steps')
        for name in os.listdir(steps) if os.path.isdir(steps) else ():
            os.unlink(os.path.join(steps, name))
        env = dict(info['env'], SLURM_JOB_ID=str(job), SLURM_JOBID=str(job), SLURM_NTASKS=str(info['ntasks']),
                   SLURM_NPROCS=str(info['ntasks']), SLURM_JOB_PARTITION=info['partition'],
                   SLURM_SUBMIT_DIR=info['submit_dir'], SLURM_JOB_NODELIST='localhost', SLURM_NODELIST='localhost',
                   SLURM_JOB_NUM_NODES='1')
        env.pop('SLURM_RESTART_COUNT', None)
        if restarts:
            env['SLURM_RESTART_COUNT'] = str(restarts)
        _write(os.path.join(folder, 'run.json'), json.dumps(dict(start=time.time(), restarts=restarts)))
        with open(out_path, 'a' if info['append'] else 'w') as out:  # sbatch --open-mode
            batch = subprocess.Popen(['bash', os.path.join(folder, 'slurm_script'), *info['args']],
                                     cwd=info['submit_dir'], env=env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        start, warned, ending, outcome = time.time(), False, None, None
        while batch.poll() is None:
            time.sleep(POLL)
            now = time.time() - start + float(_read(os.path.join(folder, 'offset'), '0') or 0)
            if info['signal'] and not warned and now >= info['limit'] - info['signal'][2]:
                warned = True
                to_batch, sig, _ = info['signal']
                for group in _step_groups(job) + ([batch.pid] if to_batch else []):
                    _killpg(group, sig)
            cancel = _read(os.path.join(folder, 'cancel'))
            if cancel is not None:
                os.unlink(os.path.join(folder, 'cancel'))
                if cancel:  # scancel -s SIG: the steps only
                    for group in _step_groups(job):
                        _killpg(group, int(cancel))
                elif ending is None:
                    ending, outcome = time.time(), 'CANCELLED'
                    for group in _step_groups(job) + [batch.pid]:
                        _killpg(group, signal.SIGTERM)
            if ending is None and now >= info['limit']:
                ending, outcome = time.time(), 'TIMEOUT'
                for group in _step_groups(job) + [batch.pid]:
                    _killpg(group, signal.SIGTERM)
            if ending is not None and time.time() - ending >= kill_wait:
                for group in _step_groups(job) + [batch.pid]:
                    _killpg(group, signal.SIGKILL)
        code = batch.returncode
        for group in _step_groups(job):  # the end of the job ends whatever is left of its steps
            _killpg(group, signal.SIGKILL)
        if os.path.exists(os.path.join(folder, 'requeue')) and outcome != 'CANCELLED':
            restarts += 1
            continue
        final = outcome or ('COMPLETED' if code == 0 else f'FAILED {code if code >= 0 else 128 - code}')
        _write(os.path.join(folder, 'state'), final)
        return 0


# --------------------------------------------------------------------------------------------------- srun
def srun(args) -> int:
    options, command = _parse_options(args)
    job = os.environ.get('SLURM_JOB_ID')
    if not job or not os.path.isdir(_job_dir(job)):
        sys.stderr.write('fake srun: only steps inside a job of the imitation (sbatch) are imitated\n')
        return 1
    # --signal is ignored here: srun(1) applies it to the job allocation srun creates, and there is none
    folder = _job_dir(job)
    counter = os.path.join(folder, 'step_counter')
    step = int(_read(counter, '-1')) + 1
    _write(counter, str(step))
    ntasks = int(options.get('ntasks', os.environ.get('SLURM_NTASKS', 1)))
    kill_wait = float(os.environ.get('FAKE_SLURM_KILLWAIT', '30'))
    tasks = []
    for rank in range(ntasks):
        env = dict(os.environ, SLURM_STEP_ID=str(step), SLURM_STEPID=str(step), SLURM_PROCID=str(rank),
                   SLURM_LOCALID=str(rank), SLURM_NODEID='0', SLURM_STEP_NUM_TASKS=str(ntasks))
        tasks.append(subprocess.Popen(command, env=env, start_new_session=True))
    os.makedirs(os.path.join(folder, 'steps'), exist_ok=True)
    _write(os.path.join(folder, 'steps', str(step)), ' '.join(str(t.pid) for t in tasks))

    def forward(signum, frame):
        sig = signal.SIGKILL if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) else signum
        for task in tasks:
            _killpg(task.pid, sig)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT):
        signal.signal(signum, forward)
    bad_exit, codes = None, {}
    while len(codes) < len(tasks):
        for task in tasks:
            if task.pid not in codes and task.poll() is not None:
                codes[task.pid] = task.returncode if task.returncode >= 0 else 128 - task.returncode
                if codes[task.pid] and options.get('kill-on-bad-exit') in ('1', True) and bad_exit is None:
                    bad_exit = time.time()
                    for other in tasks:
                        if other.poll() is None:
                            _killpg(other.pid, signal.SIGTERM)
        if bad_exit is not None and time.time() - bad_exit >= kill_wait:
            for other in tasks:
                _killpg(other.pid, signal.SIGKILL)
        time.sleep(POLL)
    return max(codes.values())


# ------------------------------------------------------------------------------------------ scontrol, scancel
def scontrol(args) -> int:
    if args[:2] == ['show', 'hostnames']:
        print('localhost')
        return 0
    if args[0] == 'requeue':
        job = args[1]
        if not os.path.isdir(_job_dir(job)) or not job_info(job)['requeue']:
            sys.stderr.write(f'Requested operation is presently disabled for job {job}\n')
            return 1
        _write(os.path.join(_job_dir(job), 'requeue'), '')
        return 0
    sys.stderr.write(f'fake scontrol: {" ".join(args)} is not imitated\n')
    return 1


def scancel(args) -> int:
    options, jobs = _parse_options(args)
    sig = options.get('signal') or options.get('-s')
    for job in jobs:
        if not os.path.isdir(_job_dir(job)) or job_state(job) is not None:
            sys.stderr.write(f'scancel: error: Kill job error on job id {job}: Job/step already completing or completed\n')
            return 1
        number = '' if sig is None else str(_signal_spec(sig)[1])
        _write(os.path.join(_job_dir(job), 'cancel'), number)
    return 0


def wait_for_job(job, timeout):
    deadline = time.time() + timeout
    while job_state(job) is None:
        assert time.time() < deadline, f'job {job} still running after {timeout} s'
        time.sleep(0.5)
    return job_state(job)


if __name__ == '__main__':
    name, argv = sys.argv[1], sys.argv[2:]
    if name == '_controller':
        sys.exit(controller(argv[0]))
    sys.exit(dict(sbatch=sbatch, srun=srun, scontrol=scontrol, scancel=scancel)[name](argv))
