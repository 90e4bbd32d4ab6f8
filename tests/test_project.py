"Project checks: README in sync with nbs/index.ipynb, CI running the README's commands, library matching notebooks."
import re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _sh_blocks(section):
    txt = (root/'README.md').read_text()
    m = re.search(rf'^## {section}\n(.*?)(?=^## )', txt, re.S | re.M)
    assert m, f'README has no "## {section}" section'
    return re.findall(r'```sh\n(.*?)\n```', m.group(1), re.S)

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(root/'tools'/'readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_ci_runs_readme_commands():
    ci = (root/'.ci'/'run').read_text()
    for sec in ('Install', 'Test'):
        cmds = _sh_blocks(sec)
        assert len(cmds) == 1 and '\n' not in cmds[0], f'{sec} must be one command on one line'
        assert cmds[0] in ci, f'.ci/run does not run the README {sec} command {cmds[0]!r}'

def test_library_is_what_notebooks_export():
    "nbdev-export must not change lottery_nb/: the library is exactly what the notebooks export"
    def snap(): return {p.name: p.read_text() for p in (root/'lottery_nb').glob('*.py')}
    before = snap()
    subprocess.run(['nbdev-export'], cwd=root, check=True, capture_output=True)
    assert snap() == before, 'lottery_nb/ differs from what nbs/ exports: run nbdev-export and commit'
