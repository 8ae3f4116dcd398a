# Copyright (c) mmfishnet contributors. All rights reserved.
"""The package pins, read from their one home, ``requirements/*.txt`` of the source tree.

``setup.py`` (``install_requires``, ``extras_require``, ``python_requires``), ``tools/setup_env.sh`` and the
tests read them here. The module imports only the standard library, so it also runs by its path before
anything is installed (``setup.py`` loads it that way, ``tools/setup_env.sh`` runs it as a script)::

    python mmfishnet/utils/requirements.py spec torch torchvision   # the requirement lines of those packages
    python mmfishnet/utils/requirements.py version mmcv             # 2.1.0, the version pinned with ==
    python mmfishnet/utils/requirements.py lines optional           # every line of requirements/optional.txt
    python mmfishnet/utils/requirements.py check build runtime      # are they installed? (exit 1 if not)

The files: ``runtime.txt`` (``install_requires``), ``build.txt`` (building mmcv's ops), ``optional.txt``
(ONNX export, TensorBoard), ``tests.txt``, and ``python.txt``: the Python range, not a pip requirements file.
"""
import os
import re
import sys

REQUIREMENTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                'requirements')
FILES = ('runtime', 'build', 'optional', 'tests')  # the pip requirements files, setup.py's order


def _lines(path: str) -> list:
    """The non-empty lines of ``path`` without ``#`` comments."""
    with open(path) as f:
        return [line.split('#', 1)[0].strip() for line in f if line.split('#', 1)[0].strip()]


def read_requirements(name: str) -> list:
    """The requirement lines of ``requirements/<name>.txt`` (``'runtime'``, ``'build'``, ...), in order."""
    assert name in FILES, f'no requirements file {name!r}; expected one of {FILES}'
    return _lines(os.path.join(REQUIREMENTS_DIR, f'{name}.txt'))


def package_name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503: ``opencv_python<4.11`` -> ``opencv-python``)."""
    return re.sub(r'[-_.]+', '-', re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', requirement).group(0)).lower()


def pins() -> dict:
    """Every requirement of every file: normalised package name -> its line (``'torch': 'torch==2.14.1'``,
    ``'numpy': 'numpy<2'``, ``'pycocotools': 'pycocotools'``), runtime first. A package is declared once."""
    found = {}
    for name in FILES:
        for requirement in read_requirements(name):
            package = package_name(requirement)
            assert package not in found, f'{package} is declared twice in {REQUIREMENTS_DIR}'
            found[package] = requirement
    return found


def requirement(package: str) -> str:
    """The requirement line of ``package`` (``'numpy'`` -> ``'numpy<2'``)."""
    found = pins()
    assert package_name(package) in found, f'{package} is in no file of {REQUIREMENTS_DIR}'
    return found[package_name(package)]


def pinned_version(package: str) -> str:
    """The exact version ``package`` is pinned to with ``==`` (``'mmcv'`` -> ``'2.1.0'``)."""
    line = requirement(package)
    exact = re.fullmatch(r'[A-Za-z0-9._-]+==([^,;\s]+)', line)
    assert exact, f'{line!r} is not an exact pin (NAME==VERSION)'
    return exact.group(1)


def python_requires() -> str:
    """The supported Python versions as setup.py's ``python_requires`` (``'>=3.10,<3.13'``)."""
    lines = _lines(os.path.join(REQUIREMENTS_DIR, 'python.txt'))
    assert len(lines) == 1, f'requirements/python.txt must hold one line (the range), not {lines}'
    return lines[0]


def unmet(requirements: list) -> list:
    """The requirements the running interpreter's installed distributions do not satisfy, each with what
    is installed. Needs ``packaging`` (installed with pip's build tools and torch)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    problems = []
    for line in requirements:
        parsed = Requirement(line)
        try:
            installed = metadata.version(parsed.name)
        except metadata.PackageNotFoundError:
            problems.append(f'{line}: not installed')
            continue
        if not parsed.specifier.contains(installed, prereleases=True):
            problems.append(f'{line}: {installed} installed')
    return problems


def main(argv: list) -> int:
    command, args = (argv[0], argv[1:]) if argv else ('', [])
    if command == 'spec':
        print('\n'.join(requirement(package) for package in args))
    elif command == 'version' and len(args) == 1:
        print(pinned_version(args[0]))
    elif command == 'lines':
        print('\n'.join(line for name in args for line in read_requirements(name)))
    elif command == 'python' and not args:
        print(python_requires())
    elif command == 'check':
        problems = unmet([line for name in args for line in read_requirements(name)])
        for problem in problems:
            print(f'unmet requirement {problem}', file=sys.stderr)
        return 1 if problems else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
