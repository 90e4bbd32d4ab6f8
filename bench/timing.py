"""Timing that resolves a few percent on a busy machine: arms run shuffled and repeated after a warm-up, beside an
A/A control (a second copy of the baseline, which shows the noise); ratios paired per rep, as medians with a
bootstrap 95% interval. Every benchmark script here times through these."""
import random, time
import numpy as np

def timed(f, *args, n=1):
    "Seconds per call of `f(*args)`, over `n` calls"
    t0 = time.perf_counter()
    for _ in range(n): f(*args)
    return (time.perf_counter() - t0) / n

def interleave(arms:dict, reps:int, seed=0, warmup=True):
    "Run every arm once as a warm-up, then `reps` times in a new random order each rep; `{arm: [what it returned]}`"
    rng = random.Random(seed)
    if warmup:
        for f in arms.values(): f()
    times = {k: [] for k in arms}
    for _ in range(reps):
        ks = list(arms); rng.shuffle(ks)
        for k in ks: times[k].append(arms[k]())
    return times

def with_aa(arms:dict, base:str, name=None):
    "`arms` with the A/A control: a second copy of arm `base`, named `name` (default '`base` A/A'), right after it"
    out = {}
    for k, f in arms.items():
        out[k] = f
        if k == base: out[name or f'{base} A/A'] = f
    return out

def boot_median(xs, n=2000, seed=0):
    "Median of `xs` and its bootstrap 95% interval"
    a = np.asarray(xs, float); rng = np.random.default_rng(seed)
    meds = np.median(a[rng.integers(0, len(a), (n, len(a)))], axis=1)
    return float(np.median(a)), float(np.quantile(meds, .025)), float(np.quantile(meds, .975))

def paired(times:dict, base:str):
    "`{arm: boot_median}` of each arm's time over `base`'s time of the same rep"
    b = np.asarray(times[base], float)
    return {k: boot_median(np.asarray(v, float) / b) for k, v in times.items()}

def fmt_ci(r, d=3):
    "A `boot_median` result as 'median [low, high]', `d` decimals"
    m, lo, hi = r
    return f'{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]'

def md_table(header, rows):
    "A markdown table"
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    return '\n'.join(out + ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows])
