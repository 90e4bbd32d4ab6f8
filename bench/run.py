"""lottery_nb's benchmark suite: what masks, pruning and the search for a ticket cost, beside the alternatives.

    python bench/run.py            # the full suite (about 20 minutes on 2 CPU cores)
    python bench/run.py --quick    # a smaller setting of every section (under 2 minutes)

It prints a summary table, then one table per section. A full run writes them all to bench/README.md with the command,
the machine and the date (`--no-write` only prints; `--quick` and `--smoke` never write). Sections (`--only 1,3` runs
some), one module each in bench/sections/, whose docstring says what it measures:

1. overhead.py: training overhead of a held mask against a bare-mask floor, torch.nn.utils.prune and fasterai.
2. prune.py: mask computation, a global 80% magnitude prune of ResNet-18 and ResNet-50.
3. memory.py: bytes held per prunable weight, and the peak RSS of a training run with and without a mask.
4. ticket.py: time to a ticket, the `lottery_nb` command split by phase, the training loop, batched seeds.

The timing helpers (shuffled reps, A/A control, bootstrap intervals) are bench/timing.py; the arms of a fit
bench/fits.py; the fasterai peer bench/peers.py (installed into bench/.peers, never a dependency); the README writer
bench/report.py. No timing here is an assertion; the test suite runs `--smoke` (one tiny rep of everything) only to
check that the script works."""
import argparse, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
if __package__ in (None, ''): sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script
NUMBERS = [1, 2, 3, 4]   # bench/sections' SECTIONS, checked when they are imported: after the arguments, so that a bad
# one or `--help` answers at once, without the 5 s of importing torch and fastai

def parser():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='a smaller setting of every section (under 2 minutes)')
    ap.add_argument('--smoke', action='store_true', help='one tiny rep of everything, to check the script runs (the tests use it)')
    ap.add_argument('--reps', type=int, default=None, help='reps per arm (default 11; with --quick 4 in section 1, 5 in section 4)')
    ap.add_argument('--only', default='1,2,3,4', help='sections to run, e.g. 1,3')
    ap.add_argument('--no-write', action='store_true', help='print only; leave bench/README.md alone')
    ap.add_argument('--no-fasterai', action='store_true', help='leave the fasterai peer out')
    ap.add_argument('--threads', type=int, default=1, help='torch threads for the timed comparisons of sections 1 and 4 '
                    '(default 1: on 2 cores a second thread doubles the spread of a fit\'s time)')
    ap.add_argument('--rss-child', default=None, help=argparse.SUPPRESS)   # section 3's fresh process for one arm
    return ap

def main(argv=None):
    ap = parser(); a = ap.parse_args(argv)
    if a.smoke: a.quick, a.reps = False, 1
    want = [int(s) if s.strip().isdigit() else s for s in a.only.split(',')]
    bad = [s for s in want if s not in NUMBERS]
    if bad and not a.rss_child: ap.error(f'--only takes section numbers from {NUMBERS}, got {bad}')
    import torch
    from bench.sections import SECTIONS
    from bench.sections.memory import rss_child
    from bench.peers import load_fasterai
    from bench import report
    assert sorted(SECTIONS) == NUMBERS, f'bench/run.py names sections {NUMBERS}, bench/sections has {sorted(SECTIONS)}'
    if a.rss_child: return rss_child(a.rss_child, a.smoke)
    a.default_threads = torch.get_num_threads()   # torch's default, for the parts that are not side-by-side comparisons
    a.fai, a.fai_why = (None, '--no-fasterai') if a.no_fasterai else load_fasterai()
    if a.fai is None: print(f'fasterai skipped: {a.fai_why}', file=sys.stderr)
    t0 = time.time(); texts, res = {}, {}
    for s in want:
        t1 = time.time(); texts[s], res[s] = SECTIONS[s].run(a)
        print(texts[s], f'\n\n({time.time()-t1:.0f} s)\n', flush=True)
    cmd = 'python bench/run.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    top = report.head(a, cmd, time.time() - t0, [r for s in sorted(res) for r in SECTIONS[s].summary(res[s])])
    print(top)
    if report.writes(a): report.write(top, [texts[s] for s in want])
    elif a.quick and not a.no_write: print('--quick: bench/README.md left as it is (a full run writes it)', file=sys.stderr)
    return res

if __name__ == '__main__': main()
