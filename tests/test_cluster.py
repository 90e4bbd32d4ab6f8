"""A study that survives a real cluster: SIGTERM at a time limit gives the seed back, a job requeued under another host
name continues at once, a job that reads a copy of the data at its own scratch path shares the folder, and a chaos run
(SIGTERM, SIGKILL, a task that raises, a requeue on another host, copies merged from other paths) ends in the rows of a
clean serial run. Other host names come from a UTS namespace of the job's own (what `unshare --uts` makes, as root);
without root those parts fail with a line saying so. The jobs are forked warm (tests/fork_job.py): processes of their
own, signalled and killed like any other, without 3-4 s of imports each."""
import json, os, random, shutil, signal, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_worker import CONFIG
from helpers import as_before
from fork_job import Zygote

WORKER = str(Path(__file__).parent/'run_worker.py')
CLOCK = ['seconds', 'find_seconds']
DEADLINE = 600   # seconds: what any wait on another process may take before the test fails (3x the slowest machine seen)

def same(a, b):
    "The same rows, every column but the wall-clock ones"
    key = ['seed', 'round', 'arm']
    a, b = (d.drop(columns=CLOCK).sort_values(key).reset_index(drop=True) for d in (a, b))
    pd.testing.assert_frame_equal(a, b, check_exact=True)

def other_host(host):
    "`host`, a host name for a job requeued on another node, once it is known that one can be given"
    if host and os.geteuid() != 0:
        pytest.fail("a requeue on another host needs a UTS namespace, made as root (CI and the dev machines run as root)")
    return host

def wait_for(what, cond, procs=()):
    "Wait until `cond()`; fail with a line that says what was awaited"
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if cond(): return
        if procs and all(p.poll() is not None for p in procs): break
        time.sleep(0.1)
    raise AssertionError(f"waited for {what} ({DEADLINE} s), in vain; exit codes {[p.poll() for p in procs]}")

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}

@pytest.fixture(scope='module')
def zygote(tmp_path_factory):
    "This file's jobs, forked warm (tests/fork_job.py), with the environment ENV"
    with Zygote(ENV, log=tmp_path_factory.mktemp('zygote')/'zygote.log') as z: yield z

def cli(zygote, args, host=None):
    "The command `lottery_nb ARGS`, a job of its own, used as a `subprocess.Popen` with text pipes is"
    return zygote.job(['-c', 'import sys; from lottery_nb.cli import main; sys.exit(main())', *args], host=other_host(host))

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "MNIST-1D as a .npz file, as a user's own data would come"
    from mnist1d.data import make_dataset, get_dataset_args
    d = make_dataset(get_dataset_args())
    f = tmp_path_factory.mktemp('data')/'mnist1d.npz'
    np.savez(f, x_train=d['x'], y_train=d['y'], x_test=d['x_test'], y_test=d['y_test'])
    return f

ARGS = ['--rounds', '2', '--epochs', '1', '--controls', 'reinit', '--no-progress', '--threads', '1']

@pytest.mark.slow
def test_slurm_array_with_a_time_limit_a_requeue_on_another_node_and_a_scratch_copy(tmp_path, data, zygote):
    "Three array tasks share a folder: task 1 is SIGTERMed and requeued on node-b; task 2 reads its own copy of the data"
    out = tmp_path/'shared'
    scratch = tmp_path/'node-c-scratch'; scratch.mkdir(); shutil.copy(data, scratch/'mnist1d.npz')
    t0 = cli(zygote, ['--dataset', str(data), '--seeds', '0', '--out', str(out), *ARGS])
    t1 = cli(zygote, ['--dataset', str(data), '--seeds', '1', '--out', str(out), *ARGS])
    wait_for('task 1 to write its first row', lambda: list(out.glob('seed1/round*/*.json')), [t1])
    t1.send_signal(signal.SIGTERM)   # the time limit
    o1, e1 = t1.communicate(timeout=DEADLINE)
    assert t1.returncode == 143 and 'stopped by SIGTERM; the seeds were given back' in e1, e1[-2000:]
    assert not (out/'seed1'/'.lock').exists()   # given back: the requeued task need not wait for a lease to go stale
    t1b = cli(zygote, ['--dataset', str(data), '--seeds', '1', '--out', str(out), *ARGS], host='node-b')   # requeued elsewhere
    t2 = cli(zygote, ['--dataset', str(scratch/'mnist1d.npz'), '--seeds', '2', '--out', str(out), *ARGS])
    for p in (t0, t1b, t2):
        o, e = p.communicate(timeout=DEADLINE)
        assert p.returncode == 0, e[-2000:]
    here(['--dataset', str(data), '--seeds', '0-2', '--out', str(tmp_path/'serial'), *ARGS])   # the reference
    from lottery_nb.store import read_results
    same(read_results(out), read_results(tmp_path/'serial'))
    same(pd.read_csv(out/'results.csv'), read_results(tmp_path/'serial'))

def worker(zygote, kw, host=None, lease=None):
    "`python tests/run_worker.py KW`, a job of its own (see `cli`)"
    env = {**ENV, **({'LOTTERY_NB_LEASE': str(lease)} if lease else {})}
    return zygote.job([WORKER, json.dumps(kw)], env=env, host=other_host(host))

def here(args):
    """The command run by `main` in this process, where torch and fastai are imported already (a process less to start):
    for a reference run, never for what a test checks"""
    from lottery_nb.cli import main
    with as_before(): code = main(list(args))
    if code == 130: raise KeyboardInterrupt   # Ctrl-C stops the tests, as it would without the command's handling
    assert code == 0, f'the reference run exited {code}'

@pytest.fixture(scope='module')
def serial(tmp_path_factory):
    "The clean serial run the chaos must end in, run here as a worker runs it (one torch thread: the rows are the same on any)"
    import torch
    from lottery_nb.all import find_ticket, read_results
    from run_worker import learn_fn
    out = tmp_path_factory.mktemp('serial')/'run'
    with as_before():
        t0 = time.monotonic()
        torch.set_num_threads(1); find_ticket(learn_fn, **CONFIG, seeds=[0, 1, 2], out=out, progress=False)
    rows = read_results(out)
    rows.attrs['seconds'] = time.monotonic() - t0   # the three seeds' fits, one after another: the chaos's time scale
    assert len(rows) == 3 * (1 + CONFIG['rounds'] * (1 + len(CONFIG['controls']))), len(rows)   # 3 seeds: dense, then each round's arms
    return rows

FAULTS = ('none', 'sigterm', 'sigkill', 'raise')

def chaos(tmp_path, serial, rng, n_rounds, zygote, window):
    """Workers on one folder under injected faults, run again until done; then the folder split into copies and merged.
    A signal lands at a random moment of the first `window` seconds of its job: about as long as its fits take"""
    from lottery_nb.store import read_results
    from lottery_nb.merge import merge_runs
    out, lease, log = tmp_path/'shared', 3, []
    done = lambda: len(read_results(out)) == len(serial) if (out/'settings.json').exists() else False
    for it in range(n_rounds):
        if it and done(): break
        ps = []
        for s in (0, 1, 2):
            fault = rng.choice(FAULTS) if it < n_rounds - 1 else 'none'   # the last try runs clean
            kw = dict(seeds=[s], out=str(out), **({'raise_at_write': rng.randint(1, 8)} if fault == 'raise' else {}))
            p = worker(zygote, kw, host=rng.choice([None, 'node-b', 'node-c']), lease=lease)
            ps.append((p, fault)); log.append((it, s, fault))
        t0 = time.monotonic()   # each signalled job gets its signal at its own random moment
        for at, p, fault in sorted(((rng.uniform(0, window), p, f) for p, f in ps if f in ('sigterm', 'sigkill')), key=lambda t: t[0]):
            time.sleep(max(0., t0 + at - time.monotonic()))
            p.send_signal(signal.SIGTERM if fault == 'sigterm' else signal.SIGKILL)
        for s, (p, fault) in enumerate(ps):
            _, err = p.communicate(timeout=DEADLINE)
            # 0: done before its fault; -15: SIGTERM while still importing, before the command's handler was set
            ok = {'none': {0}, 'sigterm': {0, 143, -15}, 'raise': {0, 1}, 'sigkill': {0, -9}}[fault]
            assert p.returncode in ok, f'try {it}, seed {s}, fault {fault}: exit {p.returncode}\n{err[-2000:]}'
            if p.returncode == 1: assert 'injected I/O error' in err, err[-2000:]
            if fault != 'sigkill':   # every job but a SIGKILLed one gives its seed back as it ends (a lock file left
                try: held = json.loads((out/f'seed{s}'/'.lock').read_text())   # there by an earlier SIGKILL is not its)
                except (OSError, ValueError): held = {}
                assert held.get('pid') != p.pid, f'try {it}: seed {s} ({fault}, exit {p.returncode}) kept its lease'
        if any(f == 'sigkill' for _, f in ps): time.sleep(lease + 0.5)   # a SIGKILLed job's lease goes stale, on any host
    assert done(), f"not done after {n_rounds} tries: {log}"
    a, b = tmp_path/'copy-a'/'run', tmp_path/'elsewhere'/'copy-b'
    for dst, seeds in ((a, [0, 2]), (b, [1])):   # copies made at other paths, as on machines that share no disk
        dst.mkdir(parents=True); shutil.copy(out/'settings.json', dst)
        for s in seeds: shutil.copytree(out/f'seed{s}', dst/f'seed{s}')
    same(merge_runs(a, b, out=tmp_path/'merged'), serial)
    same(read_results(out), serial)
    return log

@pytest.mark.slow
def test_chaos(tmp_path, serial, zygote):
    "3 workers, random faults, at most 4 tries (the last one clean)"
    chaos(tmp_path, serial, random.Random(int(os.environ.get('CHAOS_SEED', 0))), 4, zygote, window=window(serial.attrs['seconds']))

def window(serial_s):
    "About how long each of three jobs on one folder lives: the three seeds' time one after another, over the cores they share"
    return serial_s / min(3, len(os.sched_getaffinity(0)))
