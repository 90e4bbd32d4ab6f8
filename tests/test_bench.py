"The benchmark suite runs from a clone (its smallest setting), and its statistics say what they claim. No timing is asserted."
import importlib.util, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_run', ROOT/'bench'/'run.py')
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m

def test_boot_median_brackets_the_median(bench):
    assert bench.boot_median([2.] * 11) == (2., 2., 2.)
    m, lo, hi = bench.boot_median([float(i) for i in range(1, 22)] + [1000.])   # one outlier in 22
    assert m == 11.5 and lo <= m <= hi and hi < 1000

def test_interleave_warms_up_then_shuffles(bench):
    calls = []
    arms = {k: (lambda k=k: calls.append(k) or 0.) for k in 'abcd'}
    t = bench.interleave(arms, reps=6, seed=1)
    assert {k: len(v) for k, v in t.items()} == dict.fromkeys('abcd', 6)
    assert calls[:4] == list('abcd')                        # the warm-up, once each, untimed
    orders = {tuple(calls[4+4*i: 8+4*i]) for i in range(6)}
    assert len(orders) > 1 and all(sorted(o) == list('abcd') for o in orders)

def test_at_floor(bench):
    assert bench.at_floor((1.02, 0.98, 1.05))       # the interval includes 1
    assert bench.at_floor((1.008, 1.004, 1.02))     # within 1%
    assert bench.at_floor((0.95, 0.93, 0.97))       # below the floor
    assert not bench.at_floor((1.05, 1.03, 1.08))

def test_floor_callback_masks_like_lottery_nb(bench):
    import torch
    from lottery_nb.models import mlp
    torch.manual_seed(0); m = bench.remove_masks(bench.premask(mlp(40)))   # zeros, no masks or hooks: as the floor arm has it
    cb = bench.FloorCallback(m)
    for l in m:
        if isinstance(l, torch.nn.Linear): l.weight.data.add_(1.)   # an optimizer step that moved the pruned weights
    cb('after_step')
    assert abs(float(sum((l.weight == 0).sum() for l in m if isinstance(l, torch.nn.Linear)))
               / sum(l.weight.numel() for l in m if isinstance(l, torch.nn.Linear)) - 0.8) < 0.01

def test_smoke_run_prints_every_section(tmp_path):
    "`bench/run.py --smoke`: one tiny rep of every section, from the command line, README left alone"
    before = (ROOT/'bench'/'README.md').read_text() if (ROOT/'bench'/'README.md').exists() else None
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'run.py'), '--smoke'], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for s in ('## Summary', '## 1. Training overhead', '## 2. Mask computation', '## 3. Memory', '## 4. Time to a ticket',
              'bare-mask floor', 'lottery_nb fixed mask', 'torch.nn.utils.prune', 'plain PyTorch loop'):
        assert s in r.stdout, s
    assert ('fasterai 0.4.1' in r.stdout) or ('fasterai skipped' in r.stderr)
    after = (ROOT/'bench'/'README.md').read_text() if (ROOT/'bench'/'README.md').exists() else None
    assert before == after

def test_bad_section_is_one_line():
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'run.py'), '--only', '1,7', '--no-fasterai'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'section numbers from [1, 2, 3, 4], got [7]' in r.stderr
