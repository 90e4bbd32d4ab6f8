"The benchmark suite runs from a clone (its smallest setting), its statistics say what they claim, and each section has its own module. No timing is asserted."
import ast, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT/'bench'
sys.path.insert(0, str(ROOT))
from bench import timing, fits, report, run
from bench.sections import SECTIONS, overhead

def test_boot_median_brackets_the_median():
    assert timing.boot_median([2.] * 11) == (2., 2., 2.)
    m, lo, hi = timing.boot_median([float(i) for i in range(1, 22)] + [1000.])   # one outlier in 22
    assert m == 11.5 and lo <= m <= hi and hi < 1000

def test_interleave_warms_up_then_shuffles():
    calls = []
    arms = {k: (lambda k=k: calls.append(k) or k) for k in 'abcd'}
    t = timing.interleave(arms, reps=6, seed=1)
    assert t == {k: [k] * 6 for k in 'abcd'}                 # what each arm returned, the warm-up left out
    assert calls[:4] == list('abcd')                        # the warm-up, once each, untimed
    orders = {tuple(calls[4+4*i: 8+4*i]) for i in range(6)}
    assert len(orders) > 1 and all(sorted(o) == list('abcd') for o in orders)
    calls.clear(); timing.interleave(arms, reps=2, seed=1, warmup=False)
    assert len(calls) == 8

def test_with_aa_runs_the_baseline_twice():
    a, b = (lambda: 1.), (lambda: 2.)
    arms = timing.with_aa({'plain': a, 'other': b}, 'plain')
    assert list(arms) == ['plain', 'plain A/A', 'other'] and arms['plain A/A'] is a
    assert list(timing.with_aa({'x': a, 'y': b}, 'y', 'y again')) == ['x', 'y', 'y again']

def test_paired_divides_rep_by_rep():
    r = timing.paired({'base': [1., 2., 4.], 'arm': [2., 4., 8.], 'slow': [1., 2., 40.]}, 'base')
    assert r['base'] == (1., 1., 1.) and r['arm'] == (2., 2., 2.)   # paired per rep: the spread of the times cancels
    assert r['slow'][0] == 1. and r['slow'][2] == 10.
    assert timing.fmt_ci((1.23456, 1., 2.), 2) == '1.23 [1.00, 2.00]'

def test_at_floor():
    assert overhead.at_floor((1.02, 0.98, 1.05))       # the interval includes 1
    assert overhead.at_floor((1.008, 1.004, 1.02))     # within 1%
    assert overhead.at_floor((0.95, 0.93, 0.97))       # below the floor
    assert not overhead.at_floor((1.05, 1.03, 1.08))

def test_floor_callback_masks_like_lottery_nb():
    import torch
    from lottery_nb.core import remove_masks
    from lottery_nb.models import mlp
    torch.manual_seed(0); m = remove_masks(fits.premask(mlp(40)))   # zeros, no masks or hooks: as the floor arm has it
    cb = fits.FloorCallback(m)
    for l in m:
        if isinstance(l, torch.nn.Linear): l.weight.data.add_(1.)   # an optimizer step that moved the pruned weights
    cb('after_step')
    assert abs(float(sum((l.weight == 0).sum() for l in m if isinstance(l, torch.nn.Linear)))
               / sum(l.weight.numel() for l in m if isinstance(l, torch.nn.Linear)) - 0.8) < 0.01

def test_one_module_per_section_and_a_small_runner():
    "Each numbered section is its own module of bench/sections/ with `run` and `summary`; run.py only dispatches"
    assert sorted(SECTIONS) == [1, 2, 3, 4]
    for n, mod in SECTIONS.items():
        assert Path(mod.__file__).parent == BENCH/'sections', mod
        assert callable(mod.run) and callable(mod.summary), mod
        assert f'## {n}. ' in Path(mod.__file__).read_text(), f'{mod.__name__} does not write section {n}'
    assert len({m.__name__ for m in SECTIONS.values()}) == len(SECTIONS)
    src = (BENCH/'run.py').read_text()
    assert len(src.splitlines()) <= 80
    assert [d.name for d in ast.parse(src).body if isinstance(d, (ast.FunctionDef, ast.ClassDef))] == ['parser', 'main']

def test_timing_is_written_once():
    "Shuffled reps, bootstrap intervals and tables live in bench/timing.py alone; every script times through it"
    shared = re.compile(r'^\s*def (interleave|boot_median|md_table|fmt_ci|paired|with_aa|timed)\b|\.shuffle\(', re.M)
    for p in sorted(BENCH.rglob('*.py')):
        if p.name != 'timing.py': assert not shared.search(p.read_text()), f'{p.relative_to(ROOT)} times on its own'
    for script in ('bench_export.py', 'bench_jobs.py'): assert 'from bench.timing import' in (BENCH/script).read_text()

@pytest.mark.parametrize('argv,writes', [([], True), (['--quick'], False), (['--smoke'], False), (['--no-write'], False)])
def test_only_a_full_run_writes_the_readme(argv, writes):
    assert report.writes(run.parser().parse_args(argv)) is writes

@pytest.mark.parametrize('script', ['bench_export.py', 'bench_jobs.py'])
def test_the_other_scripts_run_from_a_clone(script, tmp_path):
    "`python bench/bench_export.py` and `bench/bench_jobs.py` find the shared modules from any folder (their --help imports them)"
    r = subprocess.run([sys.executable, str(BENCH/script), '--help'], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and '--quick' in r.stdout, r.stderr[-3000:]

def test_smoke_run_prints_every_section(tmp_path):
    "`bench/run.py --smoke`: one tiny rep of every section, from the command line, README left alone"
    before = (BENCH/'README.md').read_text() if (BENCH/'README.md').exists() else None
    r = subprocess.run([sys.executable, str(BENCH/'run.py'), '--smoke'], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for s in ('## Summary', '## 1. Training overhead', '## 2. Mask computation', '## 3. Memory', '## 4. Time to a ticket',
              'bare-mask floor', 'lottery_nb fixed mask', 'torch.nn.utils.prune', 'plain PyTorch loop', 'plain B (A/A)'):
        assert s in r.stdout, s
    assert ('fasterai 0.4.1' in r.stdout) or ('fasterai skipped' in r.stderr)
    after = (BENCH/'README.md').read_text() if (BENCH/'README.md').exists() else None
    assert before == after

def test_bad_section_is_one_line():
    r = subprocess.run([sys.executable, str(BENCH/'run.py'), '--only', '1,7', '--no-fasterai'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'section numbers from [1, 2, 3, 4], got [7]' in r.stderr
