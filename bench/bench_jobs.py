"""Seeds in parallel: the default command with `--jobs 2` against `--jobs 1`, each process on one torch thread.

python bench/bench_jobs.py            # the default command (MNIST-1D MLP, 8 rounds, 3 seeds, 20 epochs), 3 reps
python bench/bench_jobs.py --quick    # --quick's setting (5 rounds, seeds 0 1, 8 epochs)

Method, as on the benchmark page: the arms (jobs 1, jobs 1 again as the A/A control, jobs 2) run in a new random order
every rep, each a fresh `lottery_nb` process into a fresh folder; the speed-up of each rep is jobs 1 / jobs 2 of the
same rep; medians with a bootstrap 95% interval. Every run's results.csv must be the same, bit for bit, but for the
wall-clock columns, and the file says whether they are the committed run's, runs/default (the default experiment's
numbers are that run's: this benchmark measures time). Run nothing else meanwhile: a second busy core moves ratios by
10-20%. Writes bench/jobs.md."""
import argparse, datetime, functools, json, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd
if __package__ in (None, ''): sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script
from bench.timing import interleave, with_aa, paired, boot_median, fmt_ci, md_table
from bench.report import machine

HERE = Path(__file__).resolve().parent
CLOCK = ['seconds', 'find_seconds']
RUN = HERE.parent/'runs'/'default'   # the committed run of the default command

def against_committed(df):
    "One sentence: are these rows (wall-clock columns dropped) the committed run's, runs/default, bit for bit?"
    ref, info = pd.read_csv(RUN/'results.csv').drop(columns=CLOCK), json.loads((RUN/'run.json').read_text())
    made = f"`runs/default/` ({info['date']}, {info['machine']}, torch {info['torch']})"
    a, b = (d.sort_values(['seed', 'round', 'arm']).reset_index(drop=True) for d in (df, ref))
    try: pd.testing.assert_frame_equal(a, b[a.columns], check_exact=True)
    except (AssertionError, KeyError):
        return (f"The rows of these runs are not those of the committed run of the default command, {made}: another machine or torch "
                "build (`python runs/compare.py` measures how far they moved). The default experiment's numbers are that run's.")
    return f"The rows of these runs are the committed run of the default command, {made}, bit for bit: its tables are `runs/default/output.txt`."

def run(out, jobs, extra):
    t0 = time.perf_counter()
    r = subprocess.run(['lottery_nb', '--no-progress', '--threads', '1', '--jobs', str(jobs), '--out', str(out), *extra],
                       capture_output=True, text=True)
    if r.returncode: sys.exit(f'lottery_nb failed:\n{r.stderr[-3000:]}')
    return time.perf_counter() - t0, r.stdout

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=3); ap.add_argument('--quick', action='store_true')
    ap.add_argument('--no-write', action='store_true')
    a = ap.parse_args()
    extra = ['--quick'] if a.quick else []
    tmp, first, t_all = Path(tempfile.mkdtemp()), {}, time.time()
    def one(jobs):
        "One run into a fresh folder: its seconds; its results.csv must be the first run's, bit for bit"
        out = Path(tempfile.mkdtemp(dir=tmp)); sec, stdout = run(out, jobs, extra)
        print(f'--jobs {jobs}: {sec:.1f} s', flush=True)
        df = pd.read_csv(out/'results.csv').drop(columns=CLOCK)
        if not first: first.update(df=df, stdout=stdout)
        else: pd.testing.assert_frame_equal(df, first['df'], check_exact=True)
        shutil.rmtree(out); return sec
    arms = with_aa({'jobs 1': functools.partial(one, 1), 'jobs 2': functools.partial(one, 2)}, 'jobs 1', 'jobs 1 again')
    times = interleave(arms, a.reps, warmup=False)
    ratio = paired(times, 'jobs 1')
    speed = boot_median([o / t for o, t in zip(times['jobs 1'], times['jobs 2'])])
    med = lambda xs: f'{sorted(xs)[len(xs)//2]:.1f}'
    setting = '--quick (5 rounds, seeds 0 1, 8 epochs)' if a.quick else 'the default command (MNIST-1D MLP, 8 rounds, seeds 0 1 2, 20 epochs)'
    md = ['## Seeds in parallel: `--jobs 2` against `--jobs 1`', '',
          f'`python bench/bench_jobs.py{" --quick" if a.quick else ""}`, {datetime.date.today()}, {a.reps} reps, {time.time()-t_all:.0f} s in all. '
          f'Machine: {machine()}. Setting: {setting}, each process on one torch thread.', '',
          md_table(['arm', 'wall time per run (s), median', 'ratio to jobs 1 of the same rep, median [95% interval]'],
                   [['jobs 1', med(times['jobs 1']), '1'], ['jobs 1 again (A/A)', med(times['jobs 1 again']), fmt_ci(ratio['jobs 1 again'])],
                    ['jobs 2', med(times['jobs 2']), fmt_ci(ratio['jobs 2'])]]), '',
          f'Speed-up of `--jobs 2`: **{fmt_ci(speed)}** (jobs 1 / jobs 2, per rep). Every run wrote the same '
          f'results.csv, bit for bit, but for the wall-clock columns ({", ".join(CLOCK)}).', '',
          "The test accuracies these runs printed are --quick's, not the default experiment's." if a.quick else against_committed(first['df']), '']
    print('\n'.join(md)); print(first['stdout'])   # the run's own tables: on the screen, not in the file
    if not a.no_write: (HERE/('jobs_quick.md' if a.quick else 'jobs.md')).write_text('\n'.join(md))

if __name__ == '__main__': main()
