"""The chaos test at length: `python bench/chaos.py --runs 5` runs tests/test_cluster.py's chaos (three workers on one
results folder under random faults: SIGTERM and SIGKILL at random moments, a file write that fails, requeues under other
host names; run again until done, then split into copies at other paths and merged) once per seed, and writes
bench/chaos.md: the faults each run injected, the tries it took, and whether every row equals a clean serial run's.
CI runs one such run (`pytest tests/test_cluster.py -k chaos`); this is the longer version. As in the test, the workers
are forked warm from a process that has imported torch, fastai and lottery_nb (tests/fork_job.py)."""
import argparse, collections, random, sys, tempfile, time
from pathlib import Path
root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root/'tests'))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--runs', type=int, default=5, help='chaos runs, each with its own seed (1, 2, ...)')
    p.add_argument('--tries', type=int, default=6, help='tries per run before it counts as failed (the last one clean)')
    p.add_argument('--no-write', action='store_true', help='print only; leave bench/chaos.md as it is')
    a = p.parse_args()
    import test_cluster as tc
    from lottery_nb.store import read_results
    lines, ok = [], 0
    with tempfile.TemporaryDirectory() as d, tc.Zygote(tc.ENV, log=Path(d)/'zygote.log') as zygote:
        ref_dir = Path(d)/'serial'
        t0 = time.monotonic()
        w = tc.worker(zygote, dict(seeds=[0, 1, 2], out=str(ref_dir/'run'))); assert w.wait(tc.DEADLINE) == 0, w.stderr.read()[-2000:]
        window = tc.window(time.monotonic() - t0)   # as the test sets it: about how long a job of one seed lives beside two others
        serial = read_results(ref_dir/'run')
        for i in range(1, a.runs + 1):
            t0, run_dir = time.time(), Path(d)/f'chaos{i}'; run_dir.mkdir()
            try: log, res = tc.chaos(run_dir, serial, random.Random(i), a.tries, zygote, window), 'every row equal to the serial run'; ok += 1
            except BaseException as e: log, res = [], f'FAILED: {type(e).__name__}: {str(e)[:300]}'
            faults = collections.Counter(f for _, _, f in log if f != 'none')
            tries = 1 + max((it for it, _, _ in log), default=0)
            line = (f"| {i} | {tries} | {', '.join(f'{k} {v}' for k, v in sorted(faults.items())) or 'none'} | "
                    f"{len(serial)} | {res} | {time.time() - t0:.0f} s |")
            print(line, flush=True); lines.append(line)
    import platform, torch
    md = (f"# Chaos runs\n\n`python bench/chaos.py --runs {a.runs} --tries {a.tries}` on {time.strftime('%Y-%m-%d')}, "
          f"{platform.machine()} with {__import__('os').cpu_count()} cores, torch {torch.__version__}: {ok} of {a.runs} runs ended "
          f"with every row equal to a clean serial run's.\n\n"
          "Each run: three workers, one seed each, on one folder; each try gives each worker a random fault (none, SIGTERM or "
          f"SIGKILL at a random moment of its first {window:.1f} s, a file write that fails) and a random host name (this one, node-b, node-c: a requeue "
          "on another node); the last try runs clean; then the folder is split into two copies at other paths and merged.\n\n"
          "| run | tries | faults injected | rows | result | time |\n|---|---|---|---|---|---|\n" + '\n'.join(lines) + '\n')
    if not a.no_write: (root/'bench'/'chaos.md').write_text(md)
    print(md)
    return 0 if ok == a.runs else 1

if __name__ == '__main__': sys.exit(main())
