"The `lottery_nb` console script, run as a user would, with a tiny configuration."
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest

EXE = [sys.executable, '-c', 'import sys; from lottery_nb.cli import main; sys.exit(main())']
TINY = ['--rounds', '2', '--epochs', '1', '--seeds', '1', '--no-progress']

def run(*args, **kw): return subprocess.run(EXE + list(args), capture_output=True, text=True, timeout=300, **kw)

def test_console_script_installed():
    import shutil
    assert shutil.which('lottery_nb'), 'the lottery_nb console script is not on PATH'
    r = subprocess.run(['lottery_nb', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--prune-pct' in r.stdout and '--rewind' in r.stdout

def test_tiny_run_writes_everything(tmp_path):
    r = run(*TINY, '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {'results.csv', 'results.png', 'ticket.pt'} <= {p.name for p in tmp_path.iterdir()}
    df = pd.read_csv(tmp_path/'results.csv')
    assert len(df) == 1 + 2*3 and set(df.arm) == {'ticket', 'reinit', 'random_mask'}
    assert 'Final accuracy' in r.stdout and 'ticket' in r.stdout and 'reinit' in r.stdout

@pytest.mark.parametrize('args, msg', [(['--rounds', 'x'], 'invalid int'), (['--dataset', 'mnist'], 'invalid choice'),
                                       (['--rewind', '2 epochs'], "'500it'"), (['--controls', 'shuffle'], 'unknown control'),
                                       (['--prune-pct', '0'], 'prune-pct'), (['--epochs', '-1'], 'must be > 0')])
def test_bad_options_one_line(tmp_path, args, msg):
    r = run(*args, '--out', str(tmp_path))
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert msg in r.stderr

def test_ctrl_c_keeps_finished_rounds_and_resumes(tmp_path):
    # A shell that runs the tests in the background leaves SIGINT ignored, and a child would inherit that: give the
    # command the default disposition, so Python turns the signal into KeyboardInterrupt as it does in a terminal.
    p = subprocess.Popen(EXE + ['--rounds', '6', '--epochs', '2', '--seeds', '1', '--no-progress', '--out', str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    csv = tmp_path/'results.csv'
    t0 = time.time()
    while time.time() - t0 < 240 and not (csv.exists() and len(pd.read_csv(csv)) >= 4): time.sleep(0.2)
    assert csv.exists(), 'no round finished in time'
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and 'resume' in err and 'Traceback' not in err
    done = pd.read_csv(csv)
    assert len(done) >= 4
    r = run('--rounds', '6', '--epochs', '2', '--seeds', '1', '--no-progress', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    final = pd.read_csv(csv)
    assert len(final) == 1 + 6*3
    pd.testing.assert_frame_equal(final.iloc[:len(done)].reset_index(drop=True), done)   # finished rounds kept, not redone
