"""Results you can trust: a run killed at any moment resumes to exactly the uninterrupted rows, for every arm; jobs that
share a folder lose and double nothing; the same seed twice is refused; other settings are refused before any
training; raising rounds continues; and the serial run, `ProcessPoolExecutor` and Dask's `LocalCluster` give the same
rows, bit for bit."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch
import lottery_nb.store as store
from lottery_nb.all import find_ticket, read_results, RunFolderError

sys.path.insert(0, str(Path(__file__).parent))
from run_worker import learn_fn, CONFIG
from fork_job import Zygote

WORKER = str(Path(__file__).parent/'run_worker.py')
CLOCK = ['seconds', 'find_seconds']   # wall-clock columns: the only ones that may differ between two runs

def same(a, b):
    "Two results tables hold the same rows, bit for bit, every column but the wall-clock ones"
    key = ['seed', 'round', 'arm']
    a, b = (d.drop(columns=CLOCK).sort_values(key).reset_index(drop=True) for d in (a, b))
    pd.testing.assert_frame_equal(a, b, check_exact=True)

@pytest.fixture(scope='module')
def one_thread():
    old = torch.get_num_threads(); torch.set_num_threads(1)   # as the worker processes run
    yield
    torch.set_num_threads(old)

@pytest.fixture(scope='module')
def reference(tmp_path_factory, one_thread):
    "Uninterrupted runs, with the rewind point at initialization and at iteration 10"
    refs = {}
    for rw in (0, '10it'):
        out = tmp_path_factory.mktemp('ref')/'run'
        refs[rw] = find_ticket(learn_fn, **{**CONFIG, 'rewind': rw}, seeds=[0, 1], out=out, progress=False)
    return refs

@pytest.fixture(scope='module')
def zygote(tmp_path_factory):
    "The jobs of this file forked warm (tests/fork_job.py): processes of their own, without 3-4 s of imports each"
    with Zygote({**os.environ, 'OMP_NUM_THREADS': '1'}, log=tmp_path_factory.mktemp('zygote')/'zygote.log') as z: yield z

def job(zygote, kw):
    "`python tests/run_worker.py KW`, forked by `zygote`: used as a `subprocess.Popen` with text pipes is"
    return zygote.job([WORKER, json.dumps(kw)])

# How a process ends, as its argument says; and what a job sees as it starts, printed as one line of JSON
ENDINGS = """import os, signal, sys, time
how = sys.argv[1]
if how == 'exit': sys.exit(3)
if how == 'message': sys.exit('a message, not a number')
if how == 'raise': raise ValueError('a failing job')
if how == 'ctrl-c': raise KeyboardInterrupt
if how == 'sigterm': os.kill(os.getpid(), signal.SIGTERM)
if how == 'sleep': time.sleep(600)
if how == 'thread':   # Python waits for a thread that is not a daemon before it ends; text mode reads \\r\\n as \\n
    import threading; threading.Thread(target=lambda: (time.sleep(0.3), print('a thread ended\\r\\n', end='', flush=True))).start(); sys.exit(5)
"""
SEEN = """def fds():
    seen = []
    for f in sorted(os.listdir('/proc/self/fd'), key=int):
        try: t = os.readlink(f'/proc/self/fd/{f}')
        except OSError: continue   # the listing's own
        seen.append([int(f), t.split(':')[0] if t.startswith(('pipe:', 'socket:')) else t])
    return seen
seen = dict(argv=sys.argv, path=sys.path, cwd=os.getcwd(), name=__name__, fds=fds(), pgid=os.getpgid(0), sid=os.getsid(0),
            signals={s.name: str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                                                                 signal.SIGCHLD, signal.SIGPIPE)})
"""
PROBE = """import json, os, random, signal, socket, sys, warnings
import numpy as np, torch, fastai.basics, lottery_nb.all
""" + SEEN + """print(json.dumps(dict(seen, env=dict(os.environ), host=socket.gethostname(), threads=len(os.listdir('/proc/self/task')),
    torch_threads=torch.get_num_threads(), filters=len(warnings.filters),
    draws=[random.random(), float(np.random.rand()), torch.initial_seed(), torch.rand(1).item()])), flush=True)
""" + ENDINGS
LIGHT = "import json, os, signal, sys\n" + SEEN + "print(json.dumps(seen))"   # what `-c CODE` sees: argv, sys.path

def test_a_forked_job_is_a_fresh_process(zygote, tmp_path):
    """A job forked by the zygote and the same run by a new interpreter see the same (arguments, paths, environment,
    process group, open files, signal handling, threads, torch's settings) but their random draws, and end the same way"""
    import socket
    for name, text in (('probe.py', PROBE), ('endings.py', ENDINGS)): (tmp_path/name).write_text(text)
    cold = lambda script, how: subprocess.Popen([sys.executable, str(tmp_path/script), how], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=zygote.env)
    forked = lambda script, how, **kw: zygote.job([str(tmp_path/script), how], cwd=tmp_path, **kw)
    # the last line of stderr (`ValueError: a failing job`, `KeyboardInterrupt`), leaving out what imports print (torch's
    # notice as fastai imports), which a forked job does not print again
    last = lambda e: [l for l in e.splitlines() if 'Warning: ' not in l and l.strip() != 'warnings.warn('][-1:]
    ends = {'exit': 3, 'message': 1, 'raise': 1, 'ctrl-c': -signal.SIGINT, 'sigterm': -signal.SIGTERM, 'sleep': -signal.SIGKILL, 'thread': 5}
    for how, code in ends.items():   # a script that imports nothing, so that the new interpreters start in milliseconds
        ps = cold('endings.py', how), forked('endings.py', how)
        if how == 'sleep':
            time.sleep(0.5)
            for p in ps: p.kill()
        (o0, e0), (o1, e1) = (p.communicate(timeout=600) for p in ps)
        assert [p.returncode for p in ps] == [code, code] and o0 == o1 and last(e0) == last(e1), (how, ps[0].returncode, ps[1].returncode, o0, o1, e0[-1500:], e1[-1500:])
    assert o0 == 'a thread ended\n'
    ps = cold('probe.py', 'raise'), forked('probe.py', 'raise'), forked('probe.py', 'exit', host='node-z')   # the last: a requeue on another node
    (o0, e0), (o1, e1), (o2, _) = (p.communicate(timeout=600) for p in ps)
    assert [p.returncode for p in ps] == [1, 1, 3] and last(e0) == last(e1) == ['ValueError: a failing job'], (e0[-1500:], e1[-1500:])
    seen = [json.loads(o) for o in (o0, o1, o2)]
    draws = [v.pop('draws') for v in seen]
    assert seen[0] == seen[1], {k: (seen[0].get(k), seen[1].get(k)) for k in seen[0].keys() | seen[1].keys() if seen[0].get(k) != seen[1].get(k)}
    assert all(a != b for a, b in zip(draws[1], draws[2])), draws   # each job seeded anew, as a new process is
    assert seen[2]['host'] == 'node-z' and socket.gethostname() != 'node-z'   # this process's host name is its own still
    ps = cold('missing.py', 'x'), forked('missing.py', 'x')   # a script that is not there: status 2, and python's line
    (_, e0), (_, e1) = (p.communicate(timeout=600) for p in ps)
    assert [p.returncode for p in ps] == [2, 2] and e0 == e1 and "can't open file" in e0, (e0, e1)
    ps = (subprocess.Popen([sys.executable, '-c', LIGHT, 'an argument'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=tmp_path, env=zygote.env), zygote.job(['-c', LIGHT, 'an argument'], cwd=tmp_path))   # `python -c`
    a, b = (json.loads(p.communicate(timeout=600)[0]) for p in ps)
    assert a == b and a['argv'] == ['-c', 'an argument'] and a['path'][0] == '', (a, b)

class Crash(BaseException): pass

def wait_for_lock(f, procs, deadline=600):
    "The pid in lock file `f` once a job has written it; fails with a line that says what it waited for (no machine is that slow)"
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try: return json.loads(f.read_text())['pid']
        except (OSError, ValueError, KeyError): pass
        if all(p.poll() is not None for p in procs): break
        time.sleep(0.05)
    raise AssertionError(f"no job wrote {f} within {deadline} s (exit codes {[p.poll() for p in procs]})")

@pytest.mark.parametrize('rewind', [0, '10it'])
@pytest.mark.parametrize('at', [1, 2, 5, 9, 14])
def test_crash_at_any_write_then_resume_gives_the_same_rows(tmp_path, reference, monkeypatch, rewind, at):
    "Every arm in CONTROLS; the crash lands inside the n-th file write (the file is written, not yet in place)"
    real, n = os.replace, [0]
    def replace(a, b):
        n[0] += 1
        if n[0] == at: raise Crash()
        return real(a, b)
    kw = dict(CONFIG, rewind=rewind, seeds=[0, 1], out=tmp_path/'run', progress=False)
    with monkeypatch.context() as m:
        m.setattr(store.os, 'replace', replace); m.setattr('lottery_nb.core.os.replace', replace)
        with pytest.raises(Crash): find_ticket(learn_fn, **kw)
    same(find_ticket(learn_fn, **kw), reference[rewind])
    assert not list((tmp_path/'run').rglob('*.tmp'))   # the crash left no half file in place

@pytest.mark.slow
def test_kill_9_during_a_write_and_at_a_random_moment(tmp_path, reference, one_thread, zygote):
    out = tmp_path/'run'
    p = job(zygote, dict(seeds=[0, 1], out=str(out), kill_at_write=7)); p.wait(900)
    assert p.returncode == -9
    p = job(zygote, dict(seeds=[0, 1], out=str(out)))
    end = time.monotonic() + 600   # then again, killed once it has written a few rows (or at whatever moment it is then)
    while len(list(out.glob('seed*/round*/*.json'))) < 8 and p.poll() is None and time.monotonic() < end: time.sleep(0.05)
    p.kill(); p.wait(60)
    find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=out, progress=False)   # resumed here: the killed jobs' leases are stale
    same(read_results(out), reference[0] if CONFIG['rewind'] == 0 else reference['10it'])

@pytest.mark.slow
def test_four_jobs_share_a_folder_and_the_same_seed_twice_is_refused(tmp_path, reference, zygote):
    out = tmp_path/'run'
    ps = [job(zygote, dict(seeds=[s], out=str(out))) for s in (0, 1, 2)]
    dup = job(zygote, dict(seeds=[0], out=str(out)))   # the fourth asks for seed 0 too
    holder = wait_for_lock(out/'seed0'/'.lock', [*ps, dup])
    os.kill(holder, signal.SIGSTOP)   # whichever of the two holds seed 0 pauses, lock held, while the other asks for it
    other = next(p for p in (ps[0], dup) if p.pid != holder)
    other.wait(900)
    os.kill(holder, signal.SIGCONT)
    outs = [p.communicate(timeout=900) for p in ps + [dup]]
    if dup.pid == holder: ps[0], dup, outs[0], outs[3] = dup, ps[0], outs[3], outs[0]   # name the refused one `dup`
    assert [p.returncode for p in ps] == [0, 0, 0], [o[1][-1500:] for o in outs]
    assert dup.returncode != 0 and 'seed 0 of' in outs[3][1] and 'is being run by process' in outs[3][1], outs[3][1][-1500:]
    rows = read_results(out)
    assert len(rows) == 3 * (1 + 2 * 5) and not rows.duplicated(['seed', 'round', 'arm']).any()
    same(rows[rows.seed < 2], reference['10it'])
    assert len(pd.read_csv(out/'results.csv')) == len(rows)   # the summary the last job wrote holds every row

def test_other_settings_are_refused_before_any_training(tmp_path, reference):
    out = tmp_path/'run'
    find_ticket(learn_fn, **CONFIG, seeds=[0], out=out, progress=False)
    calls = []
    def counted(): calls.append(1); return learn_fn()
    with pytest.raises(RunFolderError, match=r"epochs: 1 in the folder, 2 now; lr: 0.003 in the folder, 0.1 now; prune_pct: 20 in the folder, 50 now"):
        find_ticket(counted, **{**CONFIG, 'epochs': 2, 'lr': 0.1, 'prune_pct': 50}, seeds=[0], out=out, progress=False)
    assert len(calls) == 1   # the probe that reads the settings; nothing trained

def test_rounds_raised_continue_without_duplicates(tmp_path, reference):
    out = tmp_path/'run'
    find_ticket(learn_fn, **{**CONFIG, 'rounds': 1}, seeds=[0, 1], out=out, progress=False)
    df = find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=out, progress=False)
    assert not df.duplicated(['seed', 'round', 'arm']).any()
    same(df, reference['10it'])

def test_controls_added_later_give_the_rows_they_would_have_given(tmp_path, reference):
    out = tmp_path/'run'
    find_ticket(learn_fn, **{**CONFIG, 'controls': ('reinit',)}, seeds=[0, 1], out=out, progress=False)
    same(find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=out, progress=False), reference['10it'])

def test_process_pool_gives_the_serial_rows(tmp_path, reference):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    with ProcessPoolExecutor(2, mp_context=mp.get_context('fork')) as ex:
        df = find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=tmp_path/'run', progress=False, executor=ex)
    same(df, reference['10it'])
    same(pd.read_csv(tmp_path/'run'/'results.csv'), reference['10it'])

@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_rows(tmp_path, reference):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=600)   # a deadline that holds on a slow machine, and a line that says what failed
        df = find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=tmp_path/'run', progress=False, executor=client.get_executor())
    same(df, reference['10it'])
    same(pd.read_csv(tmp_path/'run'/'results.csv'), reference['10it'])

def test_early_bird_run_resumes_with_the_same_rows_and_costs(tmp_path, one_thread, monkeypatch):
    "Early-bird rounds stop at their own epochs; a run crashed mid-way resumes to the same rows, costs included"
    kw = dict(CONFIG, epochs=4, rewind=0, early_bird=dict(eps=0.2, patience=1), seeds=[0], progress=False)
    ref = find_ticket(learn_fn, **kw, out=tmp_path/'ref')
    assert set(ref.arm) == {'ticket', 'retrain', *CONFIG['controls']}   # the retrain arm comes with the early bird
    real, n = os.replace, [0]
    def replace(a, b):
        n[0] += 1
        if n[0] == 6: raise Crash()
        return real(a, b)
    with monkeypatch.context() as m:
        m.setattr(store.os, 'replace', replace); m.setattr('lottery_nb.core.os.replace', replace)
        with pytest.raises(Crash): find_ticket(learn_fn, **kw, out=tmp_path/'run')
    same(find_ticket(learn_fn, **kw, out=tmp_path/'run'), ref)
    tk = ref[ref.arm == 'ticket'].sort_values('round')
    assert (tk.find_steps.values[1:] == tk.steps.cumsum().values[:-1]).all()   # a mask costs the searches before it

def test_a_refused_first_job_leaves_the_folder_other_jobs_share(tmp_path, monkeypatch):
    "Jobs that start a new folder together: the one refused for a held seed must not undo the folder the others run in"
    import lottery_nb.lottery as lot
    out, real, held = tmp_path/'run', lot.open_run, []
    def other_job_first(path, settings, **kw):   # another job makes the folder and takes seed 0 just before this one opens it
        held.append(real(path, settings, **kw).lock(0).acquire())
        return real(path, settings, **kw)
    monkeypatch.setattr(lot, 'open_run', other_job_first)
    try:
        with pytest.raises(RunFolderError, match='seed 0 of'):
            find_ticket(learn_fn, **CONFIG, seeds=[0], out=out, progress=False)
        assert (out/'settings.json').exists(), 'the refused job removed the settings the other jobs run under'
    finally:
        for h in held: h.release()

class _BigLearn:
    "A learner on a large dataset (`n` samples of 40 floats): module-level, so that it pickles, data and all"
    def __init__(self, n):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)
        from lottery_nb.data import tensor_dls
        self.dls = tensor_dls(x[:-2000], y[:-2000], x[-2000:-1000], y[-2000:-1000], bs=4096, x_test=x[-1000:], y_test=y[-1000:])
    def __call__(self):
        from fastai.basics import Learner, CrossEntropyLossFlat, accuracy, Adam
        from lottery_nb.models import mlp
        return Learner(self.dls, mlp(40, (16,)), loss_func=CrossEntropyLossFlat(), metrics=accuracy, opt_func=Adam)

def _counting_pool(n, sent):
    "A fork ProcessPoolExecutor that records the pickled size of every task it is given"
    import pickle, multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    class Counting(ProcessPoolExecutor):
        def submit(self, fn, *args, **kw):
            sent.append(len(pickle.dumps((fn, args, kw)))); return super().submit(fn, *args, **kw)
    return Counting(n, mp_context=mp.get_context('fork'))

@pytest.mark.slow
def test_the_data_reach_each_worker_once(one_thread):
    "A learner that pickles to over 50 MB (its data): a forked pool's workers start with it; a pool whose workers already run gets it once per worker"
    import pickle
    learn = _BigLearn(130_000)   # 66 MB pickled (each loader's slice carries the whole tensor), the fits' cost grows with it
    size = len(pickle.dumps(learn))
    assert size > 50e6
    kw = dict(rounds=1, epochs=1, controls=('reinit',), seeds=[0, 1], progress=False)
    sent = []
    with _counting_pool(2, sent) as ex: df = find_ticket(learn, executor=ex, **kw)
    assert len(df) == 6 and len(sent) == 6 and max(sent) < 1e6, sent   # 6 fits, none carries the data: the fork gave it
    forked = sum(sent); sent.clear()
    with _counting_pool(2, sent) as ex:
        ex.submit(os.getpid).result()   # the workers start before find_ticket registers the data
        df2 = find_ticket(learn, executor=ex, **kw)
    big = [s for s in sent if s > size / 2]
    assert 1 <= len(big) <= 4, sent   # once per worker (twice where two tasks reach a fresh worker together), not once per fit
    same(df2, df)
    print(f"\n{size / 1e6:.0f} MB pickled learner, 6 fits: a forked pool was sent {forked / 1e3:.0f} kB in all; a running pool "
          f"{sum(big) / 1e6:.0f} MB ({len(big)} copies), where one copy per fit would be {6 * size / 1e6:.0f} MB")

@pytest.mark.slow
def test_ctrl_c_with_jobs_leaves_no_lock_and_no_worker_writing(tmp_path, reference, zygote):
    "Ctrl-C on a run with two worker processes: it stops, kills its workers, gives the seeds back; the same run resumes to the serial rows"
    out = tmp_path/'run'
    cmd = ['-c', 'import sys; from lottery_nb.cli import main; sys.exit(main())', '--dataset', 'mnist1d',
           '--seeds', '0', '1', '--rounds', '2', '--epochs', '1', '--jobs', '2', '--no-progress', '--out', str(out)]
    # a shell that runs the tests in the background leaves SIGINT ignored, which a child inherits: the command turns it
    # into KeyboardInterrupt itself, as Python does in a terminal. Both commands are jobs of their own (`zygote`)
    ctrl_c = ['-c', 'import signal; signal.signal(signal.SIGINT, signal.default_int_handler); ' + cmd[1], *cmd[2:]]
    p = zygote.job(ctrl_c)
    end = time.monotonic() + 600
    while not list(out.glob('seed*/round*/*.json')) and p.poll() is None and time.monotonic() < end: time.sleep(0.05)
    assert p.poll() is None, f"the run ended (or never wrote a row in 600 s) before Ctrl-C: {p.stderr.read()[-2000:]}"
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=600)[1]
    assert p.returncode == 130 and 'interrupted' in err, err[-2000:]
    assert not list(out.glob('seed*/.lock'))
    files = sorted(out.rglob('*')); time.sleep(3)
    assert sorted(out.rglob('*')) == files   # no worker still writing
    r = zygote.job(cmd); err = r.communicate(timeout=600)[1]
    assert r.returncode == 0, err[-2000:]
    i = cmd.index('--jobs'); serial = cmd[2:i] + cmd[i + 2:-1] + [str(tmp_path/'serial')]   # one job, in this process
    from lottery_nb.cli import main
    assert main(serial) == 0
    same(read_results(out), read_results(tmp_path/'serial'))

def test_the_rows_are_the_same_bit_for_bit_whatever_the_thread_count(reference):
    "What 'reproducible' means on one machine and build: the same rows with 1 or 2 torch threads (and any --jobs, above)"
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        same(find_ticket(learn_fn, **CONFIG, seeds=[0, 1], progress=False), reference['10it'])
    finally: torch.set_num_threads(old)

def test_a_folder_of_the_last_release_continues(tmp_path, reference):
    "A folder whose settings the last release wrote (format 1: its version, the rewind as typed, classes by short name) resumes"
    import lottery_nb.lottery as lot
    from lottery_nb.lottery import _configure, _Args
    out = tmp_path/'run'
    find_ticket(learn_fn, **{**CONFIG, 'rounds': 1}, seeds=[0, 1], out=out, progress=False)
    a = _Args(**{k: v for k, v in CONFIG.items() if k != 'rounds'})
    old = {**_configure(learn_fn, a, folder=True).legacy, 'lottery_nb': '0.0.1'}   # as the last release wrote it
    (out/'settings.json').write_text(json.dumps(old))
    same(find_ticket(learn_fn, **CONFIG, seeds=[0, 1], out=out, progress=False), reference['10it'])
    with pytest.raises(RunFolderError, match="lr: 0.003 in the folder, 0.1 now"):
        find_ticket(learn_fn, **{**CONFIG, 'lr': 0.1}, seeds=[0, 1], out=out, progress=False)

@pytest.mark.slow
def test_dask_workers_with_threads_are_refused():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        with pytest.raises(ValueError, match='run several tasks at once in threads of one process'):
            find_ticket(learn_fn, **CONFIG, executor=client.get_executor(), progress=False)

def _die_halfway_through_a_result():
    "A task of a process pool that starts sending its result, then dies: a worker killed in the middle of a write"
    import struct
    f = sys._getframe()
    while f is not None and 'result_queue' not in f.f_locals: f = f.f_back   # concurrent.futures' `_process_worker`
    os.write(f.f_locals['result_queue']._writer.fileno(), struct.pack('!i', 1 << 20) + b'x' * 100)   # 100 bytes of 1 MB
    os.kill(os.getpid(), signal.SIGKILL)

def test_a_worker_killed_halfway_through_its_result_does_not_hang_the_stop():
    """Ctrl-C with jobs kills the pool's workers and shuts the pool down: one that died halfway through sending a result
    must not leave that shutdown waiting forever for the rest (it did, once in a suite run: the Ctrl-C test above hung)"""
    import multiprocessing as mp, threading
    from concurrent.futures import ProcessPoolExecutor
    from lottery_nb.lottery import _Tasks, _end_workers
    ex = ProcessPoolExecutor(1, mp_context=mp.get_context('fork'))
    f = ex.submit(_die_halfway_through_a_result)
    end = time.monotonic() + 600   # the worker writes and dies at once; the deadline holds on a machine 3x slower
    dead = lambda: ex._processes and all(not p.is_alive() for p in ex._processes.values())
    while not (dead() or f.done()) and time.monotonic() < end: time.sleep(0.05)
    assert dead() and not f.done(), 'the worker did not die halfway through its result: the test would show nothing'
    tasks = _Tasks(ex, learn_fn, 1)
    stop = threading.Thread(target=tasks.stop, args=([f], True), daemon=True)
    stop.start(); stop.join(60)
    hung = stop.is_alive()
    if hung: _end_workers(ex)   # let the pool end, so that this test process can exit, then fail
    from lottery_nb.lottery import _SHIPPED
    _SHIPPED.pop(tasks.token, None)
    assert not hung, 'stopping a pool whose worker died halfway through a result hung'

def _sleep_then(x): time.sleep(x); return x

def test_a_worker_dying_halfway_through_its_result_fails_the_tasks_instead_of_hanging():
    """A worker of a run's pool killed (out of memory) halfway through sending its result, while another still works:
    the pool's reader waits forever for the rest, and swallows the other's result. The run's wait ends the pool after
    5 s instead, and its tasks fail as a broken pool's do (the run then says to run the same call again)"""
    import multiprocessing as mp, threading
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    from lottery_nb.lottery import _first_done, _end_workers
    ex = ProcessPoolExecutor(2, mp_context=mp.get_context('fork'))
    pending = [(ex.submit(_die_halfway_through_a_result), 'dies', None), (ex.submit(_sleep_then, 1), 'works', None)]
    got = []
    waiting = threading.Thread(target=lambda: got.append(_first_done(pending, ex)), daemon=True)
    waiting.start(); waiting.join(120)   # 5 s here; the deadline holds on a machine 3x slower
    hung = waiting.is_alive()
    if hung: _end_workers(ex)   # let the pool end, so that this test process can exit, then fail
    assert not hung, 'the wait for a task hung on a pool whose worker died halfway through a result'
    with pytest.raises(BrokenProcessPool): got[0][0].result()
    ex.shutdown(wait=True)
