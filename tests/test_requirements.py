"""The package pins have one home, requirements/*.txt (issue 18): setup.py, tools/setup_env.sh and
tools/gpu_check.sh read them through mmfishnet/utils/requirements.py and write none themselves; the Python
range too (issue 19, point 6), which setup_env.sh checks before it creates the venv."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT
from mmfishnet.utils import requirements

SCRIPTS = ('tools/setup_env.sh', 'tools/gpu_check.sh')


def egg_info(tmp_path):
    """What setup.py declares, as setuptools writes it (``setup.py egg_info``): the metadata and requires.txt."""
    proc = subprocess.run([sys.executable, 'setup.py', '-q', 'egg_info', '-e', str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = tmp_path / 'mmfishnet.egg-info'
    return (info / 'PKG-INFO').read_text(), (info / 'requires.txt').read_text()


def test_setup_py_declares_the_pins(tmp_path):
    """Bug (issue 18): setup.py listed its own pins, ftfy and regex unpinned and without torch, while
    tools/setup_env.sh installed other versions: install_requires is requirements/runtime.txt, the extras
    optional.txt and tests.txt."""
    _, requires = egg_info(tmp_path)
    sections, name = {}, ''
    for line in requires.splitlines():
        if line.startswith('['):
            name = line.strip('[]')
        elif line.strip():
            sections.setdefault(name, []).append(line.strip())
    assert sections == {'': requirements.read_requirements('runtime'),
                        'optional': requirements.read_requirements('optional'),
                        'tests': requirements.read_requirements('tests')}
    pinned = dict(line.split('==') for line in sections[''] if '==' in line)
    # the pins issue 18 names: mmseg's ftfy and regex, and torch with torchvision as a pair
    assert {'ftfy', 'regex', 'torch', 'torchvision', 'mmcv', 'mmsegmentation'} <= set(pinned)


def test_scripts_write_no_pin_and_check_them_all():
    """Bug (issue 18): tools/setup_env.sh (and gpu_check.sh) wrote the versions themselves, so a pin
    changed in one place was not the one installed. No version specifier of requirements/*.txt may appear
    in them, and setup_env.sh ends by checking every requirements file against the venv."""
    patterns = {}
    for package, line in requirements.pins().items():
        spec = line[len(re.match(r'[A-Za-z0-9._-]+', line).group(0)):]
        if spec:  # the line itself, with any spelling of the name (numpy<2, opencv_python<4.11)
            patterns[line] = re.compile(re.sub(r'[-_.]', '[-_.]', re.escape(package)) + re.escape(spec), re.I)
        if spec.startswith('=='):  # and the bare version (have torch 2.14.1, MMCV_VERSION=2.1.0), where no other
            # package's pin has it (gpu_check.sh pins the GPU image's termcolor==3.3.0, mmdet's version too)
            patterns[line + ' (bare)'] = re.compile(r'(?<![\d.])(?<!==)' + re.escape(spec[2:]) + r'(?![\d.])')
    assert set(patterns) >= {'numpy<2', 'mmcv==2.1.0', 'mmcv==2.1.0 (bare)'}  # the reader splits as pip does
    for script in SCRIPTS:
        text = open(os.path.join(ROOT, script)).read()
        written = [f'{name}: {pattern.search(text).group(0)!r}' for name, pattern in patterns.items()
                   if pattern.search(text)]
        assert not written, f'{script} writes {written}'
    checked = re.search(r'^reqs check ([a-z ]+)', open(os.path.join(ROOT, SCRIPTS[0])).read(), re.M)
    assert checked and set(checked.group(1).split()) == set(requirements.FILES)


def test_reader_command_line():
    """The commands tools/setup_env.sh runs: the requirement lines of named packages, an exact version, a
    file's lines; a package in no file or a version asked of a range pin stops with an error."""
    reader = [sys.executable, os.path.join(ROOT, 'mmfishnet/utils/requirements.py')]

    def run(*args):
        return subprocess.run(reader + list(args), capture_output=True, text=True, timeout=60)

    assert run('spec', 'torch', 'opencv_python').stdout.split() == [requirements.requirement('torch'),
                                                                     requirements.requirement('opencv-python')]
    assert run('version', 'mmcv').stdout.strip() == requirements.pinned_version('mmcv')
    assert run('lines', 'build').stdout.split() == requirements.read_requirements('build')
    for bad in (('spec', 'nosuchpackage'), ('version', 'numpy')):
        assert run(*bad).returncode != 0


def test_unmet_requirements_are_named():
    """What setup_env.sh's last check relies on: a requirement the venv does not meet is named with what is
    installed (numpy here, pinned below 2 by runtime.txt), a missing package as not installed."""
    assert requirements.unmet([requirements.requirement('numpy')]) == []
    import numpy
    assert requirements.unmet(['numpy>=2', 'nosuchpackage==1']) == [
        f'numpy>=2: {numpy.__version__} installed', 'nosuchpackage==1: not installed']


# The range issue 19 (point 6) states: torch 2.14.1 has wheels for Python 3.10 and newer, numpy < 2 none for 3.13+.
PYTHON_RANGE = '>=3.10,<3.13'


def test_setup_py_states_the_python_range(tmp_path):
    """Bug (issue 19, point 6): setup.py said python_requires='>=3.8' (the README 3.9+), where the pinned
    torch needs 3.10 and numpy < 2 has no wheels for 3.13: it is requirements/python.txt's range."""
    info, _ = egg_info(tmp_path)
    assert requirements.python_requires() == PYTHON_RANGE
    assert f'Requires-Python: {PYTHON_RANGE}' in info.splitlines()


def fake_python(folder, version):
    """A stand-in interpreter that reports Python ``version`` and, asked to create a venv, says so on stderr
    and fails (exit 7) without making one."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'python'
    path.write_text(f'#!/bin/sh\nif [ "$1" = "-m" ]; then echo "venv requested: $*" >&2; exit 7; fi\necho {version}\n')
    path.chmod(0o755)
    return path


def setup_env(venv, python):
    return subprocess.run(['bash', os.path.join(ROOT, 'tools/setup_env.sh')], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHON=str(python), MMFISHNET_VENV=str(venv)))


@pytest.mark.parametrize('version, accepted', [('3.9', False), ('3.10', True), ('3.12', True), ('3.13', False)])
def test_setup_env_checks_the_interpreter_first(tmp_path, version, accepted):
    """Bug (issue 19, point 6): tools/setup_env.sh created the venv with any python3 and pip then said only
    "No matching distribution" for torch. Before creating the venv it checks $PYTHON against the range and
    stops with one line naming the fix; an interpreter in the range goes on to create the venv."""
    python = fake_python(tmp_path / 'bin', version)
    proc = setup_env(tmp_path / 'venv', python)
    if accepted:
        assert proc.returncode == 7 and f'venv requested: -m venv {tmp_path / "venv"}' in proc.stderr, proc.stdout
    else:
        assert proc.returncode == 1 and 'venv requested' not in proc.stderr
        assert proc.stdout.strip().splitlines() == [
            f'[setup_env] ERROR: PYTHON={python} is Python {version}; mmfishnet needs Python {PYTHON_RANGE} '
            '(requirements/python.txt): run PYTHON=python3.10 bash tools/setup_env.sh (or another interpreter of '
            'that range)']


def test_setup_env_checks_an_existing_venv(tmp_path):
    """An existing venv made with an interpreter outside the range (here a stand-in reporting 3.9) is named,
    with the fix, instead of pip failing inside it."""
    venv = tmp_path / 'venv'
    fake_python(venv / 'bin', '3.9')
    proc = setup_env(venv, 'python3')
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines() == [
        f'[setup_env] ERROR: the venv at {venv} is Python 3.9; mmfishnet needs Python {PYTHON_RANGE} '
        f'(requirements/python.txt): remove it (rm -rf {venv}) and run PYTHON=python3.10 bash tools/setup_env.sh '
        '(or another interpreter of that range)']
