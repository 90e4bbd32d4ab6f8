"Project checks: README in sync with nbs/index.ipynb, CI running the README's commands, library matching notebooks."
import os, re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _sh_blocks():
    txt = (root/'README.md').read_text()
    return re.findall(r'```sh\n(.*?)\n```', txt, re.S)

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(root/'tools'/'readme.py'), '--check'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

def test_readme_install_and_test_commands():
    "The first command installs from the repository (what a reader of the website can run); a clone installs with -e"
    import tomllib
    repo = tomllib.loads((root/'pyproject.toml').read_text())['project']['urls']['Repository']
    blocks = _sh_blocks()
    assert blocks[0] == f'pip install git+{repo} && lottery_nb', blocks[0]
    assert 'pip install -e . && lottery_nb' in blocks
    tests = [b for b in blocks if 'lottery_nb' not in b]
    assert tests == ['bash tools/test.sh'], f'the README gives one test command, bash tools/test.sh: {blocks}'
    ci = [l.strip() for l in (root/'.ci'/'run').read_text().splitlines() if l.strip() and not l.strip().startswith('#')]
    assert ci[-1] == tests[0], f'.ci/run does not end by running the README test command {tests[0]!r}: {ci[-1]!r}'
    assert '. .venv-ci/bin/activate' in ci, '.ci/run tests in a fresh virtual environment of its own'

# tools/test.sh, run from a copy of its folder with stand-ins for what it calls: the system set-up, pip, venv,
# nbdev-test and pytest write their arguments to a log; every other python command runs for real
STUB = '#!/bin/sh\necho "{name} $*" >> "$LOG"\n{body}\n'
PYTHON = r'''#!/bin/sh
case "$1 $2" in
  "-m pip") echo "pip $*" >> "$LOG"; exit 0;;
  "-m pytest") echo "pytest $*" >> "$LOG"; echo "tests ran"; echo "=== 3 passed in 0.01s ==="; exit "${PYTEST_RC:-0}";;
esac
exec {python} "$@"
'''
VENV = r'''#!/bin/sh
[ "$1 $2" = "-m venv" ] || exec {python} "$@"
echo "venv $3" >> "$LOG"; mkdir -p "$3/bin"; cp "$STUBS/python" "$3/bin/python"
printf 'VIRTUAL_ENV=%s; PATH=%s/bin:$PATH; export VIRTUAL_ENV PATH\n' "$PWD/$3" "$PWD/$3" > "$3/bin/activate"
'''

def _run_test_sh(tmp_path, active=True, nbdev_rc=0, pytest_rc=0, args=()):
    "Run a copy of tools/test.sh; return its result, the log of what it called, and the folder it ran in"
    import os, shutil
    repo, stubs = tmp_path/'repo', tmp_path/'stubs'
    (repo/'tools').mkdir(parents=True); stubs.mkdir()
    shutil.copy(root/'tools'/'test.sh', repo/'tools'/'test.sh')
    shutil.copytree(root/'nbs', repo/'nbs', ignore=lambda d, fs: [f for f in fs if not f.endswith('.ipynb')])
    (repo/'tools'/'setup_system.sh').write_text(STUB.format(name='setup_system', body='echo "chromium: here"'))
    files = {'nbdev-test': STUB.format(name='nbdev-test', body='exit ${NBDEV_RC:-0}'),
             'python': PYTHON.replace('{python}', sys.executable), 'python3': VENV.replace('{python}', sys.executable)}
    for name, txt in files.items(): (stubs/name).write_text(txt); (stubs/name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'CONDA_PREFIX')}
    env.update(PATH=f"{stubs}{os.pathsep}{os.environ['PATH']}", LOG=str(tmp_path/'log'), STUBS=str(stubs),
               NBDEV_RC=str(nbdev_rc), PYTEST_RC=str(pytest_rc), LOTTERY_TEST_WORKERS='2')
    if active: env['VIRTUAL_ENV'] = str(tmp_path/'env')
    r = subprocess.run(['bash', str(repo/'tools'/'test.sh'), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=120)
    log = (tmp_path/'log').read_text().splitlines() if (tmp_path/'log').exists() else []
    return r, log, repo

def test_the_test_command_sets_up_then_runs_nbdev_test_then_pytest(tmp_path):
    r, log, repo = _run_test_sh(tmp_path, args=['-x'])
    assert r.returncode == 0, r.stdout + r.stderr
    assert log == ['setup_system ', 'pip -m pip install -q -e .[dev]', 'nbdev-test --n-workers 2',
                   'pytest -m pytest -q -n 2 --dist loadfile tests/ -x'], log
    assert r.stdout.strip().splitlines()[-1] == '=== 3 passed in 0.01s ===', "the last line is pytest's closing line"
    assert 'installing into the active environment' in r.stdout and not (repo/'.venv').exists(), r.stdout
    assert 'not run (Colab-only): 10_distributed.ipynb d002' in r.stdout, r.stdout   # no cell is skipped unseen

def test_the_test_command_fails_when_nbdev_test_or_pytest_fails(tmp_path):
    r, log, _ = _run_test_sh(tmp_path/'a', nbdev_rc=1)
    assert r.returncode == 1 and not any(l.startswith('pytest') for l in log), (r.returncode, log)
    assert 'nbdev-test failed' in r.stderr and 'pytest was not run' in r.stderr, r.stderr
    r, log, _ = _run_test_sh(tmp_path/'b', pytest_rc=1)
    assert r.returncode == 1 and log[-1].startswith('pytest'), (r.returncode, log)

def test_the_test_command_makes_a_venv_when_none_is_active(tmp_path):
    r, log, repo = _run_test_sh(tmp_path, active=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert log[:3] == ['setup_system ', 'venv .venv', 'pip -m pip install -q -e .[dev]'], log
    assert 'creating ./.venv' in r.stdout and (repo/'.venv'/'bin'/'activate').exists(), r.stdout

def test_library_is_what_notebooks_export(tmp_path):
    """nbdev-export, run on a copy of the notebooks, writes exactly lottery_nb/: the library is what the notebooks export
    (in a copy, so that no other test, in this process or another, imports a module while it is being rewritten)"""
    import shutil
    shutil.copy(root/'pyproject.toml', tmp_path)
    shutil.copytree(root/'nbs', tmp_path/'nbs', ignore=lambda d, fs: [f for f in fs if not f.endswith('.ipynb')])
    (tmp_path/'lottery_nb').mkdir(); shutil.copy(root/'lottery_nb'/'__init__.py', tmp_path/'lottery_nb')   # its version
    subprocess.run(['nbdev-export'], cwd=tmp_path, check=True, capture_output=True, timeout=600)
    def snap(d): return {p.name: p.read_text() for p in (d/'lottery_nb').glob('*.py')}
    lib, exported = snap(root), snap(tmp_path)
    differ = sorted(n for n in lib.keys() | exported.keys() if lib.get(n) != exported.get(n))
    assert not differ, f'lottery_nb/ differs from what nbs/ exports in {differ}: run nbdev-export and commit'

def test_notebook_outputs_are_fresh():
    "Committed outputs were made by the code that is committed (see README, 'The docs site')"
    sys.path.insert(0, str(root/'tools'))
    import docs
    assert not docs.stale(), f'stale outputs in {docs.stale()}: run python tools/docs.py --execute'

def test_every_name_the_library_uses_resolves():
    "pyflakes on lottery_nb/, with star imports resolved against the imported modules: a name a module uses but never gets fails"
    import importlib, re
    files = sorted(str(p.relative_to(root)) for p in (root/'lottery_nb').glob('*.py'))
    out = subprocess.run([sys.executable, '-m', 'pyflakes', *files], capture_output=True, text=True, cwd=root, timeout=600).stdout
    bad = []
    for line in out.splitlines():
        m = re.match(r"(.+?\.py):(\d+):\d+:? (?:'(\w+)' may be undefined|undefined name '(\w+)')", line)
        if not m: continue
        f, ln, a, b = m.groups(); name = a or b
        mod = importlib.import_module(f[:-3].replace('/', '.'))
        if not hasattr(mod, name) and not hasattr(__import__('builtins'), name): bad.append(f'{f}:{ln}: {name}')
    assert not bad, bad

def test_every_pip_install_of_lottery_nb_goes_through_the_repository():
    "lottery_nb is not on PyPI: every install of it, on every page, in the README and in every message, uses one form"
    import json
    texts = {'README.md': (root/'README.md').read_text()}
    for p in sorted((root/'nbs').glob('*.ipynb')):
        texts[p.name] = '\n'.join(''.join(c['source']) for c in json.loads(p.read_text())['cells'])
    bad = []
    for name, t in texts.items():
        for m in re.finditer(r'pip install ([^`\n]*)', t):
            cmd = re.split(r'&&|;|\)', m.group(1))[0]   # the install itself, not the command after it
            if 'lottery-nb' in cmd and 'git+' not in cmd: bad.append(f'{name}: pip install {cmd[:80]}')
    assert not bad, bad

def test_code_on_the_pages_fits_at_1280_px():
    """Every code line a page shows (cells neither hidden nor exported, and fenced blocks in prose) is at most 100
    characters, which the docs' CSS fits at 1280 px (tests/test_docs_site.py measures it in the browser)"""
    import json
    long = []
    for p in sorted((root/'nbs').glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            s = ''.join(c['source'])
            if c['cell_type'] == 'markdown': s = '\n'.join(re.findall(r'^```[^\n]*\n(.*?)^```', s, re.S | re.M))
            elif s.startswith(('#| hide', '#| export')) or '#| echo: false' in s or 'nbdev_export' in s: continue
            long += [f'{p.name}: {l[:60]}... ({len(l)})' for l in s.split('\n') if len(l) > 100]
    assert not long, long

def test_importing_lottery_nb_prints_no_warning_and_leaves_the_users_own(tmp_path):
    "fastai's import calls torch.jit.script, which torch deprecates: silenced for that import only, not for the user's own calls"
    code = '''import warnings
def jit_warnings(w): return sum('torch.jit.script' in str(x.message) for x in w)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always', FutureWarning)
    import lottery_nb.all
print(jit_warnings(w))
import torch
def f(x): return x + 1
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always', FutureWarning)
    torch.jit.script(f)
print(jit_warnings(w))'''
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    (tmp_path/'user.py').write_text(code)   # a file: torch.jit.script reads the function's source
    r = subprocess.run([sys.executable, str(tmp_path/'user.py')], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ['0', '1'], f'torch.jit.script warnings: on import, then on the user\'s own call: {r.stdout.split()}'

def test_the_set_up_runs_pip_only_where_something_is_missing():
    "tools/test.sh skips pip when tools/installed.py finds this checkout installed editable and every requirement met"
    import importlib.util
    from packaging.requirements import Requirement
    spec = importlib.util.spec_from_file_location('installed', root/'tools'/'installed.py')
    inst = importlib.util.module_from_spec(spec); spec.loader.exec_module(inst)
    assert inst.main() is None   # the environment the tests run in has it all
    assert 'pytest' in inst.unmet(Requirement('pytest>=999')) and 'not installed' in inst.unmet(Requirement('no-such-package-xyz'))
    assert inst.unmet(Requirement('no-such-package-xyz; python_version < "3"')) is None   # a marker that excludes it here
    assert inst.unmet(Requirement('dask[distributed]>=2024.1')) is None   # with its extra's own requirements
