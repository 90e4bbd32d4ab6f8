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

@pytest.fixture(scope='module')
def fresh_kernel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fresh')
    src = tmp/'src'; src.mkdir()
    for f in ['pyproject.toml', 'README.md', 'LICENSE']: shutil.copy(root/f, src/f)
    shutil.copytree(root/'lottery_nb', src/'lottery_nb', ignore=shutil.ignore_patterns('__pycache__'))
    venv = tmp/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv/'bin'/'python'
    t0 = time.time()
    floors = tmp/'floors.txt'; floors.write_text('\n'.join(lowest_versions()) + '\n')
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', f'{src}[export,cluster,hub]', 'ipykernel', '-c', str(floors)],
                       capture_output=True, text=True)   # the export and many-seeds pages need their extras
    assert r.returncode == 0, r.stderr[-2000:]
    print(f'fresh venv installed in {time.time()-t0:.0f} s')
    out = subprocess.run([str(py), '-m', 'pip', 'list', '--format=freeze'], capture_output=True, text=True).stdout
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
    mp = pytest.MonkeyPatch(); mp.setenv('JUPYTER_PATH', str(tmp/'jupyter'))   # undone when the module's tests end
    mp.setenv('IN_TEST', '1')   # as nbdev-test sets it: the long tutorials run their smaller settings
    work = tmp/'nbs'; work.mkdir()
    for p in (root/'nbs').glob('*.ipynb'): shutil.copy(p, work/p.name)
    yield work
    mp.undo()

NOTEBOOKS = sorted(p.name for p in (root/'nbs').glob('*.ipynb'))
DEV_ONLY = {'97_showdoc.ipynb': 'it documents the docs renderer, a module for contributors that imports nbdev (dev extra)',
            '96_developing.ipynb': 'it is for contributors, and reads nbs/_timings.json from the repository',
            '10_tutorial.lottery.ipynb': 'a long page that nbdev-test runs; it needs nothing the other pages do not',
            '14_ticket_cost.ipynb': 'a long page that nbdev-test runs; it needs nothing the other pages do not'}

@pytest.mark.slow
@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_runs_in_fresh_env(fresh_kernel, name):
    if name in DEV_ONLY: pytest.skip(f'{name} needs the dev extra: {DEV_ONLY[name]}')
    import nbformat
    from nbclient import NotebookClient
    sys.path.insert(0, str(root/'tools'))
    from docs import skip_eval_false   # Colab-only cells (`#| eval: false`) are skipped, as nbdev skips them
    nb = skip_eval_false(nbformat.read(fresh_kernel/name, as_version=4))
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs = []
    NotebookClient(nb, kernel_name='lnbfresh', timeout=900, resources={'metadata': {'path': str(fresh_kernel)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if o.output_type == 'error']
    assert not errors
