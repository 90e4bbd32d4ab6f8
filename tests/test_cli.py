"The `lottery_nb` console script, run as a user would, with a tiny configuration."
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tests'))
from helpers import as_before
EXE = [sys.executable, '-c', 'import sys; from lottery_nb.cli import main; sys.exit(main())']
TINY = ['--rounds', '2', '--epochs', '1', '--seeds', '1', '--no-progress']

def run(*args, **kw): return subprocess.run(EXE + list(args), capture_output=True, text=True, timeout=300, **kw)

def here(capfd, *args):
    """`lottery_nb args` run by `main` in this process, with no interpreter to start (torch and fastai are imported
    already: 4-5 s less a command here), what it prints read at the file descriptors: a `CompletedProcess`. torch's
    thread count and the random states it sets are put back. What only a fresh process shows (an import the command
    lacks, its exit code, its signals) is checked by the tests that run the console script: `--help`, a bad option,
    Ctrl-C, `--jobs 2` (each job a process of its own), downloads."""
    from lottery_nb.cli import main
    capfd.readouterr()
    with as_before():
        try: code = main(list(args))
        except SystemExit as e: code = e.code   # argparse's own errors exit, as they do from the console script
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(['lottery_nb', *args], code, out, err)

def refused(capfd, *args):
    "A command refused, run in this process (`here`): (exit status, what reached stderr)"
    r = here(capfd, *args)
    return r.returncode, r.stderr

def test_console_script_installed(monkeypatch):
    "`lottery_nb --help` is what the CLI page prints with `get_parser().print_help()`, at the same width"
    import shutil
    from lottery_nb.cli import get_parser
    assert shutil.which('lottery_nb'), 'the lottery_nb console script is not on PATH'
    monkeypatch.setenv('COLUMNS', '100')   # argparse wraps the help to the terminal's width
    r = subprocess.run(['lottery_nb', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--prune-pct' in r.stdout and '--rewind' in r.stdout
    assert r.stdout == get_parser().format_help()

def test_tiny_run_writes_everything_and_other_settings_are_then_one_line(tmp_path, capfd):
    r = here(capfd, *TINY, '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {'results.csv', 'results.png', 'settings.json', 'ticket', 'seed1'} == {p.name for p in tmp_path.iterdir()}
    assert {'README.md', 'ticket.safetensors'} == {p.name for p in (tmp_path/'ticket').iterdir()}
    df = pd.read_csv(tmp_path/'results.csv')
    assert len(df) == 1 + 2*3 and set(df.arm) == {'ticket', 'reinit', 'random_mask'}
    assert 'Test accuracy at early stopping' in r.stdout and 'Early-stopping iteration' in r.stdout
    assert 'ticket' in r.stdout and 'reinit' in r.stdout
    assert {'es_iter', 'es_acc', 'final_acc', 'val_acc', 'steps', 'find_steps'} <= set(df.columns)
    assert (df.seed == 1).all()   # --seeds 1 is seed 1

    # the same folder asked for other settings: one line, before any training
    rows = (tmp_path/'results.csv').read_text()
    code, err = refused(capfd, *TINY, '--epochs', '2', '--lr', '0.1', '--out', str(tmp_path))   # it reads the data first
    assert code == 2 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert 'epochs: 1 in the folder, 2 now; lr: 0.003 in the folder, 0.1 now' in err
    assert (tmp_path/'results.csv').read_text() == rows   # nothing trained, nothing written

def test_jobs_2_gives_the_rows_of_runs_apart_and_folders_merge(tmp_path, capfd):
    """Seeds 0 and 1 run apart (as on two machines) give the rows of `--jobs 2`, and their folders merge into them. (Two
    seeds in one job, in one process, give the same rows: tests/test_runs.py, `reference` and the Ctrl-C test with jobs.)"""
    common = ['--rounds', '2', '--epochs', '1', '--no-progress', '--threads', '1']
    for s in (0, 1):
        r = here(capfd, *common, '--seeds', str(s), '--out', str(tmp_path/f's{s}'))
        assert r.returncode == 0, r.stderr
    two = run(*common, '--seeds', '0-1', '--jobs', '2', '--out', str(tmp_path/'two'))
    assert two.returncode == 0, two.stderr
    clock = ['seconds', 'find_seconds']
    rows = lambda d: pd.read_csv(tmp_path/d/'results.csv').drop(columns=clock)
    serial = pd.concat([rows('s0'), rows('s1')], ignore_index=True)   # the rows of `--seeds 0 1` in one job, in order
    assert set(serial.seed) == {0, 1}
    pd.testing.assert_frame_equal(rows('two'), serial, check_exact=True)
    m = here(capfd, 'merge', str(tmp_path/'s0'), str(tmp_path/'s1'), '--out', str(tmp_path/'merged'))
    assert m.returncode == 0 and 'seeds 0 1' in m.stdout, m.stderr
    pd.testing.assert_frame_equal(rows('merged'), serial, check_exact=True)
    code, err = refused(capfd, 'merge', str(tmp_path/'s0'), str(tmp_path/'merged'), '--out', str(tmp_path/'m2'))
    assert code == 2 and 'seed 0 is in both' in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err

@pytest.mark.parametrize('args, msg', [(['--rounds', 'x'], "'x' is not a count"), (['--dataset', 'mnist2d'], "unknown dataset 'mnist2d'"),
                                       (['--layer-pct', 'conv=10,attn=5'], "unknown layer kind 'attn'"),
                                       (['--valid-pct', '1.5'], 'share in (0, 1)'), (['--model', 'vgg'], 'invalid choice'),
                                       (['--rewind', '2 epochs'], "'500it'"), (['--controls', 'shuffle'], 'unknown control'),
                                       (['--prune-pct', '0'], 'prune-pct'), (['--epochs', '-1'], 'must be > 0'),
                                       (['--seeds', 'first'], "'first' is not a seed"), (['--jobs', '0'], 'must be > 0')])
def test_bad_options_one_line(tmp_path, capfd, args, msg):
    code, err = refused(capfd, *args, '--out', str(tmp_path))
    assert code == 2
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert msg in err

def test_ctrl_c_keeps_finished_rounds_and_resumes(tmp_path, capfd):
    # A shell that runs the tests in the background leaves SIGINT ignored, and a child would inherit that: give the
    # command Python's own handler, which turns the signal into KeyboardInterrupt as it does in a terminal.
    exe = [EXE[0], '-c', 'import signal; signal.signal(signal.SIGINT, signal.default_int_handler); ' + EXE[2]]
    p = subprocess.Popen(exe + ['--rounds', '6', '--epochs', '2', '--seeds', '1', '--no-progress', '--out', str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv = tmp_path/'results.csv'
    end = time.monotonic() + 900   # a deadline that holds on a machine three times slower than the slowest seen
    while time.monotonic() < end and p.poll() is None and len(list(tmp_path.glob('seed*/round*/*.json'))) < 4: time.sleep(0.2)
    assert p.poll() is None and len(list(tmp_path.glob('seed*/round*/*.json'))) >= 4, \
        f"waited for the run to write 4 rows before Ctrl-C; exit code {p.poll()}"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 130 and 'resume' in err and 'Traceback' not in err
    done = pd.read_csv(csv)
    assert len(done) >= 4
    r = here(capfd, '--rounds', '6', '--epochs', '2', '--seeds', '1', '--no-progress', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    final = pd.read_csv(csv)
    assert len(final) == 1 + 6*3
    key = ['seed', 'round', 'arm']
    kept = final.merge(done[key], on=key).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, done.sort_values(key).reset_index(drop=True))   # finished rows kept, not redone


def _digits_arrays():
    from lottery_nb.data import digits
    xt, yt, xv, yv = digits(size=8, valid_pct=0.3)
    u8 = lambda x: (x[:, 0].numpy() * 40 + 128).clip(0, 255).astype('uint8')
    return u8(xt), yt.numpy(), u8(xv), yv.numpy()

def test_npz_dataset_with_a_paper_convnet_and_layer_rates(tmp_path, capfd):
    import numpy as np
    xt, yt, xv, yv = _digits_arrays()
    np.savez(tmp_path/'d.npz', x_train=xt, y_train=yt, x_test=xv, y_test=yv)
    r = here(capfd, '--dataset', str(tmp_path/'d.npz'), '--model', 'conv2', '--layer-pct', 'conv=10,fc=20,out=10', '--device', 'cpu',
            '--rounds', '1', '--epochs', '1', '--seeds', '1', '--controls', 'none', '--no-progress', '--out', str(tmp_path/'o'))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path/'o'/'results.csv')
    # conv layers at 10%, FC at 20%, output at 10%: overall between 10 and 20% pruned after one round
    assert 80 < df.pct_remaining.iloc[-1] < 90, df.pct_remaining.tolist()

def test_image_folder_dataset(tmp_path, capfd):
    from PIL import Image
    xt, yt, xv, yv = _digits_arrays()
    for split, xs, ys in [('train', xt[:150], yt[:150]), ('valid', xv[:50], yv[:50])]:
        for i, (x, y) in enumerate(zip(xs, ys)):
            d = tmp_path/'imgs'/split/str(int(y)); d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x, mode='L').save(d/f'{i}.png')
    r = here(capfd, '--dataset', str(tmp_path/'imgs'), '--model', 'lenet300', '--rounds', '1', '--epochs', '1', '--seeds', '1',
            '--controls', 'none', '--bs', '16', '--no-progress', '--out', str(tmp_path/'o'))
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path/'o'/'results.csv')) == 2

@pytest.mark.parametrize('name', ['mnist', 'cifar10', 'imagenette'])
def test_download_offline_is_one_line(tmp_path, name):
    env = {**os.environ, 'https_proxy': 'http://127.0.0.1:9', 'HTTPS_PROXY': 'http://127.0.0.1:9', 'FASTAI_HOME': str(tmp_path)}
    r = run('--dataset', name, '--out', str(tmp_path/'o'), env=env)   # a process of its own: the proxy is read at start
    assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'needs the internet' in r.stderr and "'mnist1d', 'digits'" in r.stderr

def test_a_bad_option_from_the_console_script_is_one_line(tmp_path):
    r = subprocess.run(['lottery_nb', '--rounds', 'x', '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "'x' is not a count" in r.stderr and not (tmp_path/'settings.json').exists()

def test_cuda_asked_without_a_gpu(tmp_path, capfd):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    code, err = refused(capfd, '--device', 'cuda', '--out', str(tmp_path))
    assert code == 2 and 'sees no GPU' in err

def test_the_defaults_table_is_what_the_command_passes(monkeypatch, tmp_path):
    "The CLI page's table of `find_ticket`'s defaults beside the command's: each value is what `lottery_nb` passes"
    import inspect
    import lottery_nb.lottery as lot
    from lottery_nb.cli import main, defaults_table
    params, t = inspect.signature(lot.find_ticket).parameters, defaults_table()
    class Stop(Exception): pass
    kw = {}
    def runner(learn_fn, **k): kw.update(k); raise Stop   # what the command would run, not run
    monkeypatch.setattr(lot, 'find_ticket', runner)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Stop): main([])
    assert list(t.index) == [k for k in params if k != 'learn_fn']
    for k in t.index:
        v = kw.get(k, params[k].default)   # an argument the command does not pass takes find_ticket's default
        if k == 'out': assert v == tmp_path/'lottery_out' and t.loc[k, 'command passes'] == "'lottery_out'", v
        else: assert t.loc[k, 'command passes'] == (getattr(v, '__name__', None) or repr(v)), (k, v, t.loc[k].tolist())
        assert (t.loc[k, 'differs'] == 'yes') == (t.loc[k, 'command passes'] != t.loc[k, 'find_ticket default']), k
    assert set(t.index[t.differs == 'yes']) == {'epochs', 'lr', 'seeds', 'out'}, t

def _reference():
    "The store page's reference of the results.csv columns: its prose and `{column: (meaning, unit, filled by)}`"
    import json
    cell = next(''.join(c['source']) for c in json.loads((ROOT/'nbs'/'07b_store.ipynb').read_text())['cells'] if c.get('id') == 'st0c1')
    rows = [[p.strip() for p in l.strip().strip('|').split('|')] for l in cell.splitlines() if l.startswith('| `')]
    return cell, {r[0].strip('`'): tuple(r[1:]) for r in rows}

def test_the_results_csv_reference_is_the_columns_a_run_writes(tmp_path):
    "Every column a run with every arm writes is in the store page's reference, and every column there is written, as it says"
    import json
    from lottery_nb.cli import main
    from lottery_nb.controls import CONTROLS, UNTRAINED
    prose, ref = _reference()
    assert main(['--rounds', '1', '--epochs', '2', '--seeds', '0', '--controls', ','.join(CONTROLS), '--early-bird',
                 '--no-progress', '--out', str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path/'results.csv')
    assert set(df.arm) == {'ticket', *CONTROLS}
    missing, extra = [c for c in df.columns if c not in ref], [c for c in ref if c not in df.columns]
    assert not missing and not extra, f'not in the reference: {missing}; in the reference, written by no run: {extra}'
    assert all(len(v) == 3 and all(v) for v in ref.values()), ref   # a meaning, a unit and the arms, for each
    assert all(f'`{a}`' in prose for a in UNTRAINED)
    # what the reference says of the arms and units holds in the run
    untrained, trained = df[df.arm.isin(UNTRAINED)], df[~df.arm.isin(UNTRAINED)]
    assert (untrained[['es_epoch', 'es_iter', 'epochs_to_best', 'epochs_trained', 'steps', 'samples', 'seconds']] == 0).all().all()
    assert (untrained[['val_loss', 'val_acc', 'test_acc']] == '[]').all().all()
    assert (trained.steps > 0).all() and (trained.es_iter == trained.es_epoch * trained.steps // trained.epochs_trained).all()
    for _, r in trained.iterrows(): assert len(json.loads(r.val_loss)) == len(json.loads(r.test_acc)) == r.epochs_trained
    assert df[['final_acc', 'es_acc', 'best_acc']].stack().between(0, 1).all() and df.pct_remaining.max() == 100
    dense = df[(df['round'] == 0)].steps.item()
    assert (df[df['round'] == 0].find_steps == 0).all() and (df[df['round'] == 1].find_steps == dense).all()
    assert df.lottery_nb.nunique() == 1 and df.lottery_nb.iloc[0] == __import__('lottery_nb').__version__
