"""Run part of the default experiment here, with the command itself, and compare its rows with the committed run.

python runs/compare.py                                  # seed 0, rounds 0-1: 4 fits, 2,880 steps; torch's own threads
python runs/compare.py --threads 2                      # the same with 2 torch threads
python runs/compare.py --seeds 0 1 2 --rounds 8         # the whole default experiment (54,000 steps)

On the machine and torch build of runs/default/run.json the rows must be the same bit for bit, whatever the threads
and jobs: it exits 1 if they are not. Elsewhere it prints how far each (round, arm) moved, beside the seeds' spread."""
import argparse, json, subprocess, sys, tempfile
from pathlib import Path
import pandas as pd

RUN = Path(__file__).resolve().parent/'default'
CLOCK = ['seconds', 'find_seconds']   # wall-clock columns: the only ones two runs of the same rows differ in
KEY = ['seed', 'round', 'arm']

def rows(df): return df.drop(columns=CLOCK).sort_values(KEY).reset_index(drop=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, nargs='+', default=[0]); ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--threads', type=int, default=None); ap.add_argument('--jobs', type=int, default=1)
    a = ap.parse_args()
    ref, info = pd.read_csv(RUN/'results.csv'), json.loads((RUN/'run.json').read_text())
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ['lottery_nb', '--no-progress', '--out', f'{tmp}/out', '--rounds', str(a.rounds), '--jobs', str(a.jobs),
               '--seeds', *map(str, a.seeds)] + (['--threads', str(a.threads)] if a.threads else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode: sys.exit(f'{" ".join(cmd)} failed:\n{r.stderr[-3000:]}')
        here = pd.read_csv(f'{tmp}/out/results.csv')
    there = ref[ref.seed.isin(a.seeds) & (ref['round'] <= a.rounds)]
    print(f'{" ".join(cmd[:1] + cmd[4:])}: {len(here)} rows, against runs/default ({info["date"]}, {info["machine"]}, '
          f'torch {info["torch"]}, {info["threads"]} thread)')
    try: pd.testing.assert_frame_equal(rows(here), rows(there)[rows(here).columns], check_exact=True)
    except AssertionError as e: print(f'NOT the same rows: {str(e).splitlines()[0]}')
    else: print('the same rows, bit for bit, in every column but the wall-clock ones'); return 0
    spread = ref.groupby(['round', 'arm']).es_acc.std()
    moved = (here.groupby(['round', 'arm']).es_acc.mean() - there.groupby(['round', 'arm']).es_acc.mean()).abs()
    print(pd.DataFrame({'moved': moved.round(3), "runs/default's std over its seeds": spread[moved.index].round(3)}).to_string())
    return 1

if __name__ == '__main__': sys.exit(main())
