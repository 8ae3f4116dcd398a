"""One home per fact in the code (issue 18), read with ast: no two mmfishnet modules import each other, the
error types live in a module that imports nothing of the project, and each shared predicate is written once."""
import ast
import os

from helpers import ROOT

PACKAGE = 'mmfishnet'
ERRORS = 'mmfishnet.utils.errors'


def project_modules():
    """Dotted name -> file of every module of the package (a package is its ``__init__.py``)."""
    modules = {}
    for folder, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
        for name in files:
            if name.endswith('.py'):
                parts = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
                modules['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = os.path.join(folder, name)
    return modules


def imports_of(name, path, modules):
    """The project modules ``name`` imports anywhere in its file (functions included: an import deferred
    into a function still closes a circle, it only moves the failure to run time)."""
    package = name if path.endswith('__init__.py') else name.rsplit('.', 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            for alias in node.names:  # ``from pkg import module`` imports the module
                found.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph():
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_no_import_circle():
    """Bug (issue 18): mmfishnet/engine/hooks.py, utils/cli.py and utils/dist.py imported each other (for
    UserError and NonFiniteLossError), cli.py's half deferred into a function to dodge the failure."""
    graph = import_graph()
    assert {'mmfishnet.engine.hooks', 'mmfishnet.utils.cli', ERRORS} <= set(graph)  # the reader sees them
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_error_types_live_in_a_leaf_module():
    """Bug (issue 18): the error types were defined in modules that import others (UserError in cli.py,
    NonFiniteLossError in hooks.py, CheckpointError in safe_load.py, ConversionError in converters.py);
    they live in mmfishnet/utils/errors.py, which imports nothing of the project, and are the same objects
    under the names the package exports."""
    assert import_graph()[ERRORS] == set()
    from mmfishnet import converters, engine
    from mmfishnet.utils import checkpoint, cli, errors
    assert cli.UserError is errors.UserError and engine.NonFiniteLossError is errors.NonFiniteLossError
    assert checkpoint.CheckpointError is errors.CheckpointError
    assert converters.ConversionError is errors.ConversionError
    assert engine.TrainingInterrupted is errors.TrainingInterrupted

    def is_exception(node):  # a class whose base is an exception type (by the naming of Python's and ours)
        return isinstance(node, ast.ClassDef) and any(
            getattr(base, 'id', getattr(base, 'attr', '')).endswith(('Error', 'Exception', 'Interrupted'))
            for base in node.bases)

    defined = {node.name for path in project_modules().values() for node in ast.walk(ast.parse(open(path).read()))
               if is_exception(node)}
    assert defined == {name for name in errors.__all__ if isinstance(getattr(errors, name), type)}


def modules_with_constant(value, folders=(PACKAGE, 'tools')):
    """The files (relative to the repo) whose code holds the string constant ``value``."""
    found = set()
    for top in folders:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    tree = ast.parse(open(path).read())
                    if any(isinstance(n, ast.Constant) and n.value == value for n in ast.walk(tree)):
                        found.add(os.path.relpath(path, ROOT))
    return found


def test_shared_predicates_have_one_definition():
    """Bug (issue 18): 'is this path remote' was ``'://' in`` in config_checks.py and hooks.py besides
    ``safe_load.is_remote``, and 'is this an official unconverted FishNet checkpoint' (keys ``fish.fish.`` or
    ``module.fish.fish.``) was written in both checkpoint/pretrained.py and config_checks.py, each with its own
    error message; two copies drift apart."""
    assert modules_with_constant('://') == {'mmfishnet/utils/checkpoint/safe_load.py'}
    assert modules_with_constant('module.fish.fish.') == {'mmfishnet/utils/checkpoint/pretrained.py'}


def test_no_tool_imports_another_tool():
    """Bug (issue 18): tools/test.py put tools/ on sys.path and imported tools/train.py as a module for its
    ``load_config``; what two tools share lives in the package (mmfishnet/utils/runner_setup.py)."""
    scripts = {os.path.splitext(name)[0]: os.path.join(folder, name)
               for folder, _, files in os.walk(os.path.join(ROOT, 'tools')) for name in files if name.endswith('.py')}
    offenders = []
    for name, path in scripts.items():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                imported = [alias.name.split('.')[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                imported = [(node.module or '').split('.')[0]]
            else:
                continue
            offenders += [f'{os.path.relpath(path, ROOT)} imports {m}' for m in imported if m in scripts]
    assert 'train' in scripts and 'test' in scripts  # the reader sees the tools
    # the GPU check's mmcv step reads check_mmcv.py's compiled_cuda_version: check_mmcv runs in set-up before the
    # OpenMMLab libraries that importing mmfishnet needs are installed, so it cannot live in the package
    known = {'tools/gpu_check_steps/stage_b.py imports check_mmcv'}
    assert not set(offenders) - known, offenders


def test_every_serial_module_exists_and_is_marked():
    """Bug: a test module with real timings renamed or misspelled in conftest.SERIAL_MODULES runs on
    tools/run_tests.sh's two parallel processes, where a neighbour's load moves its timings (a grace period
    or an imitated Slurm time limit passed by load, not by the code). Every name must be a test file here,
    and its tests must carry the `serial` marker that run_tests.sh selects with -m."""
    import subprocess
    import sys
    from conftest import SERIAL_MODULES
    missing = sorted(n for n in SERIAL_MODULES if not os.path.isfile(os.path.join(ROOT, 'tests', n)))
    assert not missing, f'conftest.SERIAL_MODULES names no file: {missing}'
    proc = subprocess.run([sys.executable, '-m', 'pytest', 'tests', '-q', '-p', 'no:cacheprovider', '-m', 'serial',
                           '--collect-only'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = {line.split('::')[0].rsplit('/', 1)[-1] for line in proc.stdout.splitlines() if '::' in line}
    assert collected == SERIAL_MODULES, proc.stdout[-2000:]
