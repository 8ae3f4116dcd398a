# Copyright (c) mmfishnet contributors. All rights reserved.
"""Which settings ``bench_train_speed.py`` runs within its budget, and in which order: pure functions, so that
tests can plant a plan's bugs without a GPU.

A setting is ``(model, precision, batch, compile, cudnn_benchmark)``. :func:`settings` puts them in priority
order (the targets of docs/training_speed.md first). Before each row the benchmark asks :func:`next_setting`
for the first pending setting whose estimated cost still fits the time left: a compiled row never starts
without time for its compile. :func:`estimate` takes each cost from, in this order, what this run measured,
the previous run's JSON (``--previous``) and the defaults below.
"""

MAIN, REF = 'fishnet150', 'resnet50'
# Cold compile seconds on the H200 machine (16 cores, empty inductor cache): leads until a run measures them
# (the issue that prepared the run estimated 100-200 s for FishNet-150; the others scaled by their layer count).
DEFAULT_COMPILE_S = {'fishnet99': 100, 'fishnet150': 150, 'fishnet201': 200, 'resnet50': 60, 'resnet101': 90}
CUDAGRAPHS_EXTRA = 1.15  # reduce-overhead: inductor's compile, then the warm-up and the graph's recording
# Eager img/s (batch 32, 224x224) on the H200: bench_backbone.py's TF32 table of 2026-11-26 (docs/benchmarks.md),
# for the time of a row's steps only
DEFAULT_IMG_S = {'fishnet99': 1000, 'fishnet150': 700, 'fishnet201': 520, 'resnet50': 1600, 'resnet101': 950}
SETUP_S = 10.0  # building the model, counting its FLOPs, moving it to the GPU, cleaning up after the row
PROFILE_STEPS = 6  # steps of a row's profile: its warm-up (5 by default) and the profiled step


def settings(models, precisions, batches, compile_modes, smoke=False) -> list:
    """Every setting, most important first: the targets (FishNet-150 and ResNet-50, bf16, the first two batches,
    eager then CUDA graphs), then TF32 and fp16 (AMP never slower than TF32), the third batch, the other
    models, cudnn.benchmark off (OpenMMLab's default), then the other compile modes."""
    if smoke:  # each code path once: both model families, autocast with and without a GradScaler, compile
        wanted = [('fishnet99', 'bf16', 'eager', True), ('resnet50', 'tf32', 'eager', True),
                  ('fishnet99', 'fp16', 'eager', False), ('fishnet99', 'tf32', 'default', True)]
        return [(m, p, batches[0], c, b) for m, p, c, b in wanted if m in models and p in precisions
                and c in compile_modes]
    first = [m for m in (MAIN, REF) if m in models] or list(models[:1])
    others = [m for m in models if m not in first]
    rows = []

    def add(*setting):
        if setting not in rows:
            rows.append(setting)

    bf16 = 'bf16' if 'bf16' in precisions else precisions[0]
    graphs = [c for c in ('cudagraphs', 'default') if c in compile_modes][:1]
    for c in ['eager'] * ('eager' in compile_modes) + graphs:  # the targets: eager first (cheap), then graphs
        for b in batches[:2]:
            for m in first:
                add(m, bf16, b, c, True)
    for p in precisions:  # AMP never slower than TF32
        for m in first:
            add(m, p, batches[0], 'eager', True)
    for b in batches[2:]:
        for m in first:
            add(m, bf16, b, 'eager', True)
    for p in [bf16] + [p for p in precisions if p != bf16]:
        for m in others:
            add(m, p, batches[0], 'eager', True)
    for m in first + others:  # cudnn.benchmark off, as OpenMMLab's default
        add(m, bf16, batches[0], 'eager', False)
    for c in compile_modes:
        for b in batches:
            for m in first + others:
                add(m, bf16, b, c, True)
    return [s for s in rows if s[3] in compile_modes]


def steps_per_row(warmup: int, windows: int, steps: int) -> int:
    return warmup + windows * steps


def setting_key(setting) -> str:
    model, precision, batch, compile_mode, benchmark = setting
    return f'{model} {precision} b{batch} {compile_mode} cudnn.benchmark={"on" if benchmark else "off"}'


def row_key(row: dict) -> str:
    return setting_key((row['model'], row['precision'], row['batch'], row['compile'],
                        row['cudnn.benchmark'] == 'on'))


def estimate(setting, n_steps: int, measured: list, previous: list) -> dict:
    """Seconds a setting is expected to take: ``compile`` (0 for eager), ``run`` (set-up and its ``n_steps``
    steps) and ``profile`` (its later profile). ``measured``: this run's rows; ``previous``: the rows of the
    previous run's JSON. A row's ``row s`` is its whole time, ``compile s`` the first step's."""
    model, precision, batch, compile_mode, _ = setting
    ok = [r for r in measured if 'error' not in r] + [r for r in previous if 'error' not in r]
    same = [r for r in ok if row_key(r) == setting_key(setting)]
    compile_s = 0.0
    if compile_mode != 'eager':
        found = [r['compile s'] for r in same + [r for r in ok if r['model'] == model and r['compile'] == compile_mode]
                 if isinstance(r.get('compile s'), (int, float))]
        default = DEFAULT_COMPILE_S.get(model, max(DEFAULT_COMPILE_S.values()))
        compile_s = found[0] if found else default * (CUDAGRAPHS_EXTRA if compile_mode == 'cudagraphs' else 1)
    if same and isinstance(same[0].get('row s'), (int, float)):
        run = same[0]['row s'] - (same[0].get('compile s') or 0.0)
    else:
        rates = [r['img/s'] for r in ok if r['model'] == model and r['precision'] == precision
                 and isinstance(r.get('img/s'), (int, float))]
        img_s = rates[0] if rates else DEFAULT_IMG_S.get(model, min(DEFAULT_IMG_S.values()))
        run = SETUP_S + n_steps * batch / img_s
    profiled = [r['profile s'] for r in same if isinstance(r.get('profile s'), (int, float))]
    # a profile rebuilds the row: a compile again (inductor's caches are warm by then: half, a guess) and a few steps
    profile = profiled[0] if profiled else SETUP_S + 0.5 * compile_s + run * PROFILE_STEPS / max(n_steps, 1)
    return dict(compile=compile_s, run=run, profile=profile, total=compile_s + run)


def next_setting(pending: list, left: float, cost) -> tuple:
    """The first of ``pending`` (priority order) whose ``cost(setting)['total']`` fits in ``left`` seconds, and
    the settings before it that do not fit, each with why: ``(setting or None, [(setting, reason), ...])``."""
    passed = []
    for setting in pending:
        need = cost(setting)
        if need['total'] <= left:
            return setting, passed
        what = f"compile ~{need['compile']:.0f} s + " if need['compile'] else ''
        passed.append((setting, f"needs {what}~{need['run']:.0f} s, {max(left, 0):.0f} s left"))
    return None, passed


def schedule(pending: list, budget: float, cost) -> tuple:
    """The whole plan ahead of time: (the settings that fit in ``budget`` one after another, in order; the
    others with why). What :func:`next_setting` gives row by row when every estimate holds."""
    run, skipped, left = [], [], budget
    pending = list(pending)
    while pending:
        setting, passed = next_setting(pending, left, cost)
        skipped += passed
        if setting is None:
            break
        run.append(setting)
        left -= cost(setting)['total']
        pending = pending[pending.index(setting) + 1:]
    return run, skipped


def settings_text(items) -> str:
    return '; '.join(setting_key(s) + (f' ({why})' if why else '') for s, why in items)
