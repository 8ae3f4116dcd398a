"""Docs that cannot go stale: every command in README.md and docs/*.md that runs a project tool names a script
that exists, repository files that exist and flags the tool's argument parser accepts; every relative link
resolves, anchors included. Nothing is run: each Python tool's argparse parser is taken from the tool (its
``build_parser()``, else the parser its ``parse_args(argv)`` or ``main(argv)`` builds, stopped before it
parses) and the documented command line is parsed with it.

What is read:

- the commands: the lines of fenced blocks tagged ``bash``/``sh``/``shell``/``console`` (``\\`` continuations
  joined, ``#`` comments dropped, split at ``&&``, ``||``, ``;`` and ``|``), after any ``VAR=value`` prefixes,
  that start with ``python``/``python3``/``.venv/bin/python``/``$PY``/``$PYTHON`` SCRIPT or ``bash``/``sh``
  SCRIPT (or ``./tools/x.sh``), where SCRIPT is under ``tools/`` or ``benchmarks/``; ``python -m pytest``
  lines too (their paths only). Inline code spans that start the same way are checked as well, except for
  their argument count (prose may show ``--shape H W``), and so are the flags of inline spans that start with
  a bare ``tools/x.py``.
- the repository paths: an argument (or the value of ``--flag=value`` or ``key=value``) that starts with
  ``configs/``, ``tools/``, ``demo/``, ``tests/``, ``benchmarks/``, ``docs/``, ``mmfishnet/`` or ``.ci/``, or
  names a ``.md``/``.py``/``.yml`` file without a folder, must exist (``{a,b}`` and ``*`` expanded, each
  alternative matching at least one file). Everything else is a path the user makes (``data/``,
  ``checkpoints/``, ``work_dirs/``, ``out/``, ``*.onnx``, ...) and is not checked.
- the shell scripts: ``SHELL_SCRIPTS`` says how each takes its arguments (a launcher forwards to a Python
  tool, whose parser then checks the forwarded part); a test keeps that table true to the scripts.
"""
import argparse
import contextlib
import glob
import importlib.util
import inspect
import io
import os
import re
import shlex
import sys
from functools import lru_cache

import pytest

from helpers import ROOT

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))

SHELL_LANGS = {'bash', 'sh', 'shell', 'console', 'zsh'}
TOOL_DIRS = ('tools/', 'benchmarks/')
REPO_DIRS = ('configs/', 'tools/', 'demo/', 'tests/', 'benchmarks/', 'docs/', 'mmfishnet/', '.ci/')
ROOT_FILE_SUFFIXES = ('.md', '.py', '.yml', '.yaml')
PYTHON = re.compile(r'^(?:\S*/)?python(?:3(?:\.\d+)?)?$|^\$\{?(?:PY|PYTHON)\}?$')
SEPARATORS = {'&&', '||', ';', '|', '&'}

# How each shell script of tools/ takes its arguments:
# - ('launcher', TOOL, NAMES): its leading positional arguments NAMES, the rest goes to the Python TOOL.
#   Of NAMES, CONFIG and CHECKPOINT become the tool's positionals and WORK_DIR its --work-dir; the others
#   (NUM_PROCESSES, PARTITION, JOB_NAME) are the launcher's own. Its header shows exactly this usage.
# - ('forward', TOOL): every argument goes to the Python TOOL, except the flags the script itself compares
#   with (a literal "--flag" in it).
# - ('pytest',): every argument goes to pytest (its flags are not checked here, paths are).
# - ('none',): it takes no arguments.
SHELL_SCRIPTS = {
    'tools/dist_train.sh': ('launcher', 'tools/train.py', ('CONFIG', 'NUM_PROCESSES')),
    'tools/dist_test.sh': ('launcher', 'tools/test.py', ('CONFIG', 'CHECKPOINT', 'NUM_PROCESSES')),
    'tools/slurm_train.sh': ('launcher', 'tools/train.py', ('PARTITION', 'JOB_NAME', 'CONFIG', 'WORK_DIR')),
    'tools/slurm_test.sh': ('launcher', 'tools/test.py', ('PARTITION', 'JOB_NAME', 'CONFIG', 'CHECKPOINT')),
    'tools/dist_run.sh': ('launcher', None, ('SCRIPT', 'NUM_PROCESSES')),
    'tools/slurm_run.sh': ('launcher', None, ('PARTITION', 'JOB_NAME', 'SCRIPT')),
    'tools/slurm_sbatch.sh': ('launcher', 'tools/train.py', ('CONFIG', 'WORK_DIR')),
    'tools/slurm_lib.sh': ('none', ),
    'tools/gpu_check.sh': ('forward', 'tools/gpu_check.py'),
    'tools/run_tests.sh': ('pytest', ),
    'tools/run_demo.sh': ('none', ),
    'tools/setup_env.sh': ('none', ),
}
FORWARDED_POSITIONALS = ('CONFIG', 'CHECKPOINT')


# --- reading the markdown ---------------------------------------------------------------------------------

def split_fences(text):
    """(fenced blocks as (language, first line number, lines), the prose lines with code blocks blanked)."""
    blocks, prose, block = [], [], None
    for number, line in enumerate(text.split('\n'), 1):
        fence = re.match(r'^\s*(```|~~~)\s*([\w+-]*)', line)
        if block is None and fence:
            block = (fence.group(2).lower(), number + 1, [])
            prose.append('')
        elif block is not None and re.match(r'^\s*(```|~~~)\s*$', line):
            blocks.append(block)
            block = None
            prose.append('')
        elif block is not None:
            block[2].append(line)
            prose.append('')
        else:
            prose.append(line)
    return blocks, prose


def logical_lines(lines, first):
    """Lines with their backslash continuations joined, as (line number, text)."""
    out, buf, start = [], '', None
    for number, line in enumerate(lines, first):
        start = number if start is None else start
        if line.rstrip().endswith('\\'):
            buf += line.rstrip()[:-1] + ' '
            continue
        out.append((start, buf + line))
        buf, start = '', None
    if buf:
        out.append((start, buf))
    return out


def simple_commands(line):
    """The simple commands of a shell line: shlex tokens, comments dropped, split at && || ; | &."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = '#'
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: not a command line this checker can read
        return []
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(token)
    commands.append(current)
    return [c for c in commands if c]


def strip_env(tokens):
    """The tokens after any VAR=value prefixes (and exec/time/nohup)."""
    i = 0
    while i < len(tokens) and (re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', tokens[i]) or
                               tokens[i] in ('exec', 'time', 'nohup')):
        i += 1
    return tokens[i:]


def tool_invocation(tokens):
    """(kind, script, args) of a command that runs a project tool, else None. kind: 'python', 'shell' or
    'pytest' (python -m pytest)."""
    tokens = strip_env(tokens)
    if not tokens:
        return None
    head, rest = tokens[0], tokens[1:]
    if PYTHON.match(head):
        while rest and rest[0] in ('-u', '-B', '-O'):
            rest = rest[1:]
        if rest[:2] == ['-m', 'pytest']:
            return 'pytest', None, rest[2:]
        if rest and norm(rest[0]).startswith(TOOL_DIRS) and rest[0].endswith('.py'):
            return 'python', norm(rest[0]), rest[1:]
        return None
    if head in ('bash', 'sh') and rest and norm(rest[0]).startswith(TOOL_DIRS):
        return 'shell', norm(rest[0]), rest[1:]
    if norm(head).startswith(TOOL_DIRS) and head.endswith('.sh'):
        return 'shell', norm(head), rest
    if head == 'sbatch':  # sbatch [its options] tools/x.sh [the script's arguments]
        scripts = [i for i, token in enumerate(rest) if norm(token).startswith(TOOL_DIRS) and token.endswith('.sh')]
        return ('shell', norm(rest[scripts[0]]), rest[scripts[0] + 1:]) if scripts else None
    return None


def norm(path):
    return path[2:] if path.startswith('./') else path


def doc_commands(text):
    """Every command of a markdown text that runs a project tool: (line, kind, script, args, full), where
    ``full`` says whether the whole command line is checked (fenced blocks) or only its flags and paths."""
    blocks, prose = split_fences(text)
    found = []
    for lang, first, lines in blocks:
        for number, line in logical_lines(lines, first):
            for tokens in simple_commands(line) if lang in SHELL_LANGS else ():
                invocation = tool_invocation(tokens)
                if invocation:
                    found.append((number, *invocation, True))
            if lang not in SHELL_LANGS and re.match(r'^\s*(\S*python\S*|bash)\s+(\./)?(tools|benchmarks)/', line):
                found.append((number, 'untagged', None, [line.strip()], False))
    for number, line in enumerate(prose, 1):
        for span in re.findall(r'`([^`]+)`', line):
            for tokens in simple_commands(span):
                invocation = tool_invocation(tokens)
                if invocation:
                    found.append((number, *invocation, False))
                elif re.match(r'^(tools|benchmarks)/\S+\.py$', tokens[0]) and len(tokens) > 1:
                    found.append((number, 'python', tokens[0], tokens[1:], False))
                elif len(tokens) == 1 and norm(tokens[0]).startswith(REPO_DIRS) and not re.search(r'<|\.\.\.', span):
                    found.append((number, 'mention', None, tokens, False))
    return found


# --- the tools' parsers -----------------------------------------------------------------------------------

class _Captured(Exception):
    def __init__(self, parser):
        super().__init__('parser captured')
        self.parser = parser


@lru_cache(maxsize=None)
def tool_parser(script):
    """The argparse parser of a Python tool, without running it: its ``build_parser()``, else the parser its
    ``parse_args(argv)`` or ``main(argv)`` builds, caught when it is about to parse."""
    path = os.path.join(ROOT, script)
    name = '_docs_' + re.sub(r'\W', '_', script)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))  # as when the script runs: its folder first on sys.path
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(os.path.dirname(path))
    if hasattr(module, 'build_parser'):
        return module.build_parser()

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    entry = getattr(module, 'parse_args', None) or getattr(module, 'main', None)
    assert entry is not None, f'{script} has no build_parser(), parse_args(argv) or main(argv) to read its flags'
    original = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = capture
    try:
        entry(*([[]] if inspect.signature(entry).parameters else []))
    except _Captured as captured:
        return captured.parser
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = original
    raise AssertionError(f'{script}: {entry.__name__}() returned without parsing a command line')


def parse_problem(script, argv):
    """None when the tool's parser accepts ``argv``, else argparse's message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            tool_parser(script).parse_args(argv)
    except SystemExit as e:
        if e.code:
            return stderr.getvalue().strip().splitlines()[-1]
    return None


def unknown_flags(script, args, extra=()):
    """The ``--flags`` of ``args`` that the tool's parser does not define exactly (no abbreviations)."""
    known = set(tool_parser(script)._option_string_actions) | set(extra)
    return [a.split('=', 1)[0] for a in args if a.startswith('--') and a.split('=', 1)[0] not in known]


def shell_flags(script):
    """The flags a shell script compares its arguments with itself ("--flag" literals)."""
    return set(re.findall(r'"(--[\w-]+)"', open(os.path.join(ROOT, script)).read()))


# --- the checks -------------------------------------------------------------------------------------------

def path_problems(args):
    """Arguments that name repository files that do not exist."""
    problems = []
    for arg in args:
        for value in {arg, arg.split('=', 1)[-1]}:
            value = norm(value)
            if not (value.startswith(REPO_DIRS) or ('/' not in value and value.endswith(ROOT_FILE_SUFFIXES))):
                continue
            value, _, test_name = value.partition('::')  # a pytest node id: the file and its test function
            for alternative in expand_braces(value):
                if not glob.glob(os.path.join(ROOT, alternative)):
                    problems.append(f'{value} does not exist in the repository')
                    break
            else:
                if test_name and f'def {test_name}(' not in open(os.path.join(ROOT, value)).read():
                    problems.append(f'{value} has no test {test_name}')
    return problems


def expand_braces(pattern):
    match = re.search(r'\{([^{}]*)\}', pattern)
    if not match:
        return [pattern]
    return [p for alt in match.group(1).split(',')
            for p in expand_braces(pattern[:match.start()] + alt + pattern[match.end():])]


def command_problems(kind, script, args, full):
    """What is wrong with one documented command (empty when nothing)."""
    if kind == 'untagged':
        return [f'a command in a code block without a shell language tag (```bash): {args[0]}']
    problems = path_problems(args)
    if kind in ('pytest', 'mention'):
        return problems
    if not os.path.isfile(os.path.join(ROOT, script)):
        return problems + [f'{script} does not exist']
    if kind == 'python':
        problems += [f'{script} has no flag {f}' for f in unknown_flags(script, args)]
        if full and not problems:
            problem = parse_problem(script, args)
            problems += [f'{script} {" ".join(args)}: {problem}'] if problem else []
        return problems
    how = SHELL_SCRIPTS.get(script)
    if how is None:
        return problems + [f'{script}: how it takes arguments is not in tests/test_docs.py SHELL_SCRIPTS']
    if how[0] == 'none':
        return problems + ([f'{script} takes no arguments, got {" ".join(args)}'] if args else [])
    if how[0] == 'pytest':
        return problems
    if how[0] == 'forward':
        problems += [f'{script} has no flag {f}' for f in unknown_flags(how[1], args, shell_flags(script))]
        own = shell_flags(script) - set(tool_parser(how[1])._option_string_actions)
        forwarded = [a for a in args if a.split('=', 1)[0] not in own]
        if full and not problems:
            problem = parse_problem(how[1], forwarded)
            problems += [f'{script} {" ".join(args)}: {problem}'] if problem else []
        return problems
    _, tool, names = how
    if not full:  # prose: only the flags it shows
        return problems + ([f'{script} passes {f} to {tool}, which has no such flag'
                            for f in unknown_flags(tool, args)] if tool else [])
    if len(args) < len(names):
        return problems + [f'{script} needs {" ".join(names)} before its options, got {" ".join(args)}']
    positional, rest = dict(zip(names, args)), args[len(names):]
    if tool is None:  # dist_run.sh / slurm_run.sh: SCRIPT names the tool
        tool = 'tools/' + positional['SCRIPT']
        if not os.path.isfile(os.path.join(ROOT, tool)):
            return problems + [f'{tool} does not exist']
    problems += [f'{script} passes {f} to {tool}, which has no such flag' for f in unknown_flags(tool, rest)]
    if not problems:
        argv = [positional[n] for n in names if n in FORWARDED_POSITIONALS]
        argv += ['--work-dir', positional['WORK_DIR']] if 'WORK_DIR' in positional else []
        problem = parse_problem(tool, argv + rest)
        problems += [f'{script} {" ".join(args)} -> {tool}: {problem}'] if problem else []
    return problems


def check_commands(text):
    """Every problem of the tool commands in a markdown text, as 'line N: ...'."""
    return [f'line {number}: {p}' for number, kind, script, args, full in doc_commands(text)
            for p in command_problems(kind, script, args, full)]


def slug(heading):
    """GitHub's anchor of a heading: markup dropped, lower case, punctuation but - and _ removed, spaces -> -."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'[`*]', '', text).strip().lower()
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(path):
    _, prose = split_fences(open(path).read())
    seen, out = {}, set()
    for line in prose:
        match = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if match:
            base = slug(match.group(1))
            out.add(base if base not in seen else f'{base}-{seen[base]}')
            seen[base] = seen.get(base, 0) + 1
    return out


def check_links(path):
    """Every relative link or image of a markdown file that does not resolve (file, then #anchor)."""
    _, prose = split_fences(open(path).read())
    problems = []
    for number, line in enumerate(prose, 1):
        line = re.sub(r'`[^`]*`', '', line)
        for target in re.findall(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)', line):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # https:, mailto:, ...
                continue
            file_part, _, anchor = target.partition('#')
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(resolved):
                problems.append(f'line {number}: {target}: {file_part} does not exist')
            elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
                problems.append(f'line {number}: {target}: no heading #{anchor} in {os.path.relpath(resolved, ROOT)}')
    return problems


# --- the tests --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('doc', DOCS)
def test_every_documented_command_runs_an_existing_tool_with_existing_files_and_accepted_flags(doc):
    """Catches: a command in the README or docs/ that no longer runs (a renamed or removed tool, config or
    file, a flag the tool's parser no longer has, a launcher called with the wrong layout)."""
    problems = check_commands(open(os.path.join(ROOT, doc)).read())
    assert not problems, f'{doc}:\n' + '\n'.join(problems)


def test_the_docs_document_commands():
    """Catches: a checker that silently finds nothing (a change of the fence or command syntax it reads), which
    would pass every doc."""
    found = {script for doc in DOCS for _, kind, script, _, full in doc_commands(open(os.path.join(ROOT, doc)).read())
             if full}
    assert {'tools/train.py', 'tools/test.py', 'tools/dist_train.sh', 'tools/run_demo.sh', 'tools/run_tests.sh',
            'tools/gpu_check.sh', 'tools/setup_env.sh', 'tools/slurm_train.sh'} <= found, found


@pytest.mark.parametrize('doc', DOCS)
def test_every_relative_link_resolves(doc):
    """Catches: a link or image in the README or docs/ to a moved or removed file, or to a heading renamed."""
    problems = check_links(os.path.join(ROOT, doc))
    assert not problems, f'{doc}:\n' + '\n'.join(problems)


def test_the_shell_script_table_matches_the_scripts():
    """Catches: SHELL_SCRIPTS gone stale, so launcher commands would be checked against the wrong layout: a
    tools/*.sh missing from it, a launcher whose usage line (header comment) names other positionals or
    another tool, a script listed as taking no arguments that forwards them, or a pytest/forward script that
    no longer passes "$@" on."""
    scripts = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'tools', '*.sh')))
    assert scripts == sorted(SHELL_SCRIPTS)
    for script, how in SHELL_SCRIPTS.items():
        text = open(os.path.join(ROOT, script)).read()
        header = ''.join(line for line in text.splitlines() if line.startswith('#'))
        if how[0] == 'launcher':
            tool = os.path.basename(how[1]) + ' options' if how[1] else 'script args'
            assert f'{script} {" ".join(how[2])} [{tool}]' in header, script
        elif how[0] == 'none':  # "$@" of a shell function is that function's arguments, not the script's
            top_level = re.sub(r'^\w+\(\) \{([^\n]*\}$|[^\n]*\n.*?^\})', '', text, flags=re.M | re.S)
            assert '$@' not in top_level and '${@' not in top_level, script
        elif how[0] == 'pytest':
            # pytest gets the arguments: on its own line, or through an array that holds `-m pytest`
            array = re.search(r'^(\w+)=\([^\n]*-m pytest ', text, flags=re.M)
            assert re.search(r'-m pytest .*"\$@"', text) or (
                array and re.search(r'"\$\{%s\[@\]\}" "\$@"' % array.group(1), text)), script
        else:
            assert re.search(rf'{re.escape(how[1])} .*"\$@"', text.replace('\\\n', ' ')), script


# --- the checker itself, on planted stale docs ------------------------------------------------------------

GOOD_COMMANDS = """
```bash
FOO=1 python tools/train.py configs/mask_rcnn_fishnet150_fpn_1x_coco.py --amp \\
    --cfg-options model.backbone.with_cp=True   # a comment --bogus
bash tools/dist_train.sh configs/mask_rcnn_fishnet150_fpn_1x_coco.py 8 --resume
GPUS=16 bash tools/slurm_train.sh PARTITION job configs/fishnet/fishnet150_8xb32_in1k.py work_dirs/x --amp
bash tools/gpu_check.sh --only numerics,ops && bash tools/gpu_check.sh --fetch-wheels
.venv/bin/python tools/image_demo.py demo/shapes.png configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py --out-dir out
bash tools/run_tests.sh tests/test_docs.py -k links
```
Inline: `python tools/test.py CONFIG CHECKPOINT --show-dir vis`, `tools/train.py --resume`.
"""

# Each planted case: the line that replaces a good command, and what the checker must say.
DET = 'configs/mask_rcnn_fishnet150_fpn_1x_coco.py'
STALE = [
    (f'python tools/no_such_tool.py {DET}', 'tools/no_such_tool.py does not exist'),
    ('python tools/train.py configs/mask_rcnn_fishnet150_fpn_2x_coco.py',
     'configs/mask_rcnn_fishnet150_fpn_2x_coco.py does not exist'),
    (f'FOO=1 python tools/train.py {DET} \\\n    --no-such-flag', 'tools/train.py has no flag --no-such-flag'),
    ('$PY tools/test.py configs/fishnet/fishnet150_8xb32_in1k.py', 'the following arguments are required: checkpoint'),
    (f'bash tools/dist_train.sh {DET} 8 --work_dir w', 'passes --work_dir to tools/train.py'),
    (f'bash tools/slurm_test.sh PARTITION job {DET}', 'needs PARTITION JOB_NAME CONFIG CHECKPOINT'),
    ('bash tools/gpu_check.sh --only numerics --no-such-step', 'tools/gpu_check.sh has no flag --no-such-step'),
    ('bash tools/run_demo.sh --fast', 'tools/run_demo.sh takes no arguments'),
    ('bash tools/run_tests.sh tests/test_nothing.py', 'tests/test_nothing.py does not exist'),
    ('python tools/image_demo.py demo/missing.png configs/toy/mask_rcnn_fishnet99_fpn_toy-coco.py --out-dir o',
     'demo/missing.png does not exist'),
]


def test_the_command_checker_passes_good_commands():
    """Catches: a checker that flags correct commands (continuations, comments, env prefixes, launchers,
    gpu_check.sh's own flags, pytest arguments, inline spans), which would make the doc test useless."""
    assert check_commands(GOOD_COMMANDS) == []
    assert len(doc_commands(GOOD_COMMANDS)) == 9


@pytest.mark.parametrize('line,message', STALE, ids=[m for _, m in STALE])
def test_the_command_checker_fails_on_a_planted_stale_command(line, message):
    """Catches: a checker that lets a stale command through: a missing tool, config, image or test file, an
    unknown flag (also after a continuation and to a launcher), a missing positional, a wrong launcher
    layout, a flag gpu_check.sh does not take, arguments to a script that takes none."""
    problems = check_commands(GOOD_COMMANDS.replace('```bash\n', f'```bash\n{line}\n', 1))
    assert len(problems) == 1 and message in problems[0], problems


def test_the_command_checker_reads_inline_spans_and_untagged_blocks():
    """Catches: stale flags in inline code left unchecked, a file named in prose that is gone (also one of a
    {a,b} pattern, and a pytest node id whose test was renamed), and a command block whose missing language
    tag hides it from the checker."""
    prose = 'See `configs/{mask,faster}_rcnn_fishnet{99,250}_fpn_1x_coco.py` and `tests/test_docs.py::test_gone`.'
    assert [p.split(': ', 1)[1] for p in check_commands(prose)] == [
        'configs/{mask,faster}_rcnn_fishnet{99,250}_fpn_1x_coco.py does not exist in the repository',
        'tests/test_docs.py has no test test_gone']
    assert check_commands(prose.replace('250', '201').replace('test_gone', 'test_every_relative_link_resolves')) == []
    assert 'tools/train.py has no flag --resume-from' in ' '.join(check_commands('Use `tools/train.py --resume-from`.'))
    assert 'without a shell language tag' in ' '.join(check_commands('```\npython tools/train.py x.py\n```\n'))


def test_the_link_checker_fails_on_planted_broken_links(tmp_path):
    """Catches: a link checker that lets a missing file, a renamed heading or a broken image through, or that
    reads links inside code."""
    headings = '# Other page\n\n## The `with_cp` option\n\n## Step 1: a, b\n\n## Step 1: a, b\n'
    (tmp_path / 'other.md').write_text(headings)
    (tmp_path / 'pic.png').write_bytes(b'')
    page = tmp_path / 'page.md'
    good = ('# Title\n\n[a](other.md) [b](other.md#the-with_cp-option) [c](other.md#step-1-a-b-1) ![p](pic.png)\n'
            '[d](#title) [e](https://example.com/x.md) `[f](missing.md)`\n\n```\n[g](missing.md)\n```\n')
    page.write_text(good)
    assert check_links(str(page)) == []
    for broken, message in [('[x](missing.md)', 'missing.md does not exist'),
                            ('[x](other.md#no-such-heading)', 'no heading #no-such-heading'),
                            ('![x](images/none.png)', 'images/none.png does not exist'),
                            ('[x](#titel)', 'no heading #titel')]:
        page.write_text(good + broken + '\n')
        problems = check_links(str(page))
        assert len(problems) == 1 and message in problems[0], (broken, problems)


def pins_table(text):
    """The requirement -> file rows of the table in docs/get_started.md's "Pinned versions" section."""
    section = text.split('## Pinned versions', 1)[1].split('\n## ', 1)[0]
    return dict(re.findall(r'^\| `([^`]+)` \| (\w+) \|', section, flags=re.M))


def test_the_pins_table_is_the_requirements_files():
    """Catches: the pins table of docs/get_started.md gone stale against requirements/*.txt, the one place the
    pins live (a version bumped in the file but not in the docs, a pin added or dropped, a pin listed under
    another file)."""
    from mmfishnet.utils.requirements import read_requirements
    files = {line: name for name in ('runtime', 'build', 'optional', 'tests') for line in read_requirements(name)}
    table = pins_table(open(os.path.join(ROOT, 'docs', 'get_started.md')).read())
    assert table == files


def test_the_pins_table_reader_sees_a_stale_row():
    """Catches: a pins-table reader that reads nothing or ignores versions, which would let the test above
    pass against any docs."""
    text = '## Pinned versions\n\n| requirement | file | why |\n|---|---|---|\n| `torch==2.13.0` | runtime | x |\n'
    assert pins_table(text) == {'torch==2.13.0': 'runtime'}
