"""Every notebook runs top to bottom in a fresh Jupyter kernel, in a fresh virtual environment that has only the
package, its declared dependencies and ipykernel: the closest we get to Colab here. The notebooks run from a copy
of nbs/ with nothing else beside them, so a missing dependency or a hidden reliance on repository files fails.

That environment also holds the **lowest** version of every dependency that pyproject.toml allows (fastai's own floor
for fastcore, 1.8): the floors are tested by running every notebook on them. torch and torchvision are the exception:
this machine installs one pair only (2.14.1 and 0.29.1, from local disk), so they are the newest, not the floor; the
torch floor was checked once by hand (see bench/floors.md)."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest

root = Path(__file__).resolve().parent.parent
INSTALL_S = 1800   # the install takes about 3 minutes here; deadlines hold on a machine three times slower
CELL_S = 900       # the slowest cell of a page takes under a minute here (nbs/_timings.json)
# The notebooks spread over pytest-xdist's processes (tests/conftest.py, SPREAD): they share one environment, made once
# per session (`shared_env`; tests/conftest.py starts it early), and each process runs them in its own copy of nbs/.

def lowest_versions():
    "Pins of the lowest versions pyproject.toml allows: each dependency's floor (its `>=`), fastcore at fastai's own floor"
    import tomllib
    from packaging.requirements import Requirement
    import torch, torchvision
    deps = tomllib.loads((root/'pyproject.toml').read_text())['project']
    extra = deps['optional-dependencies']
    reqs = [Requirement(r) for r in deps['dependencies'] + extra['export'] + extra['cluster'] + extra['hub']]
    here = {'torch': torch.__version__.split('+')[0], 'torchvision': torchvision.__version__.split('+')[0]}   # the one pair on this disk
    pins = []
    for r in reqs:
        floor = next((s.version for s in r.specifier if s.operator == '>='), None)
        if r.name in here: pins.append(f'{r.name}=={here[r.name]}')
        elif floor: pins.append(f'{r.name}=={floor}' if r.name != 'mnist1d' else 'mnist1d==0.0.2.post1')   # 0.0.2 exists only as .post1
    return pins + ['fastcore==1.8.0']   # fastai 2.8.7 allows fastcore >= 1.8.0

def _install(tmp):
    "A virtual environment in `tmp`/venv with the package at its floors and ipykernel, registered as the kernel `lnbfresh`"
    src = tmp/'src'; src.mkdir()
    for f in ['pyproject.toml', 'README.md', 'LICENSE']: shutil.copy(root/f, src/f)
    shutil.copytree(root/'lottery_nb', src/'lottery_nb', ignore=shutil.ignore_patterns('__pycache__'))
    venv = tmp/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    py = venv/'bin'/'python'
    t0 = time.time()
    floors = tmp/'floors.txt'; floors.write_text('\n'.join(lowest_versions()) + '\n')
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', f'{src}[export,cluster,hub]', 'ipykernel', '-c', str(floors)],
                       capture_output=True, text=True, timeout=INSTALL_S)   # the export and many-seeds pages need their extras
    assert r.returncode == 0, r.stderr[-2000:]
    print(f'fresh venv installed in {time.time()-t0:.0f} s')
    out = subprocess.run([str(py), '-m', 'pip', 'list', '--format=freeze'], capture_output=True, text=True, timeout=300).stdout
    assert 'nbdev' not in out and 'pytest' not in out, 'the fresh environment must not have the dev extras'
    from packaging.utils import canonicalize_name
    from packaging.version import Version
    have = {canonicalize_name(n): Version(v) for n, _, v in (l.partition('==') for l in out.split()) if v}
    for pin in lowest_versions():   # compared as versions, so `huggingface_hub==0.20` matches `huggingface-hub==0.20.0`
        name, _, v = pin.partition('==')
        assert have.get(canonicalize_name(name)) == Version(v), f'{pin} is not what the fresh environment installed'
    kdir = tmp/'jupyter'/'kernels'/'lnbfresh'; kdir.mkdir(parents=True)
    (kdir/'kernel.json').write_text(json.dumps(dict(argv=[str(py), '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                                                    display_name='lottery_nb fresh', language='python',
                                                    env={'PATH': f"{venv/'bin'}{os.pathsep}{os.environ['PATH']}"})))   # the venv's own `lottery_nb` command first, as in Colab

def shared_env(tmp_path_factory):
    """The fresh environment, made once per test session: under pytest-xdist the first process to ask makes it, in the
    session's shared temporary folder, while the others wait (with a deadline) and then use it; a failure is kept, so
    the others fail with its message instead of installing again"""
    import fcntl
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): base = base.parent   # the folder all workers of this session share
    tmp, wait_s = base/'fresh_env', INSTALL_S + 900
    with open(base/'fresh_env.lock', 'w') as lock:
        deadline = time.monotonic() + wait_s
        while True:
            try: fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB); break
            except BlockingIOError:
                if time.monotonic() > deadline: pytest.fail(f'waited {wait_s} s for another test process to make the fresh environment')
                time.sleep(1)
        if (base/'fresh_env.failed').exists(): pytest.fail((base/'fresh_env.failed').read_text())
        if not (tmp/'ready').exists():
            shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir()
            try: _install(tmp)
            except BaseException as e:
                (base/'fresh_env.failed').write_text(f'the fresh environment could not be made (in another test): {e}'[:3000]); raise
            (tmp/'ready').write_text('')
    return tmp

@pytest.fixture(scope='module')
def fresh_kernel(tmp_path_factory):
    "A copy of nbs/ to run in, for this process (a page writes beside itself), and the fresh environment's kernel"
    env = shared_env(tmp_path_factory)
    mp = pytest.MonkeyPatch(); mp.setenv('JUPYTER_PATH', str(env/'jupyter'))   # undone when the module's tests end
    mp.setenv('IN_TEST', '1')   # as nbdev-test sets it: the long tutorials run their smaller settings
    work = tmp_path_factory.mktemp('nbs')
    for p in (root/'nbs').glob('*.ipynb'): shutil.copy(p, work/p.name)
    yield work
    mp.undo()

NOTEBOOKS = sorted(p.name for p in (root/'nbs').glob('*.ipynb'))
DEV_ONLY = {'97_showdoc.ipynb': 'it documents the docs renderer, a module for contributors that imports nbdev (dev extra)',
            '96_developing.ipynb': 'it is for contributors, and reads nbs/_timings.json from the repository',
            '10_tutorial.lottery.ipynb': 'a long page that nbdev-test runs; it needs nothing the other pages do not',
            '14_ticket_cost.ipynb': 'a long page that nbdev-test runs; it needs nothing the other pages do not'}

@pytest.mark.slow
@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.skip(reason=f'{n} needs the dev extra: {DEV_ONLY[n]}'))
                                  if n in DEV_ONLY else n for n in NOTEBOOKS])   # skipped before the environment is made
def test_notebook_runs_in_fresh_env(fresh_kernel, name):
    import nbformat
    from nbclient import NotebookClient
    sys.path.insert(0, str(root/'tools'))
    from docs import skip_eval_false   # Colab-only cells (`#| eval: false`) are skipped, as nbdev skips them
    nb = skip_eval_false(nbformat.read(fresh_kernel/name, as_version=4))
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs = []
    NotebookClient(nb, kernel_name='lnbfresh', timeout=CELL_S, startup_timeout=300,   # a cell, a kernel's start
                   resources={'metadata': {'path': str(fresh_kernel)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if o.output_type == 'error']
    assert not errors
