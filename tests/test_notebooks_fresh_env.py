"""Pages a reader can copy: every page's shown cells (hidden, exported, output-only and Colab-only cells left out,
`tools/docs.py`'s `shown`) run in order in a fresh Jupyter kernel, in a fresh virtual environment that has only the
package, its declared dependencies and ipykernel: the closest we get to Colab here. Each page runs in a folder of its own
holding that page alone, so a name defined only in a hidden cell, a missing dependency or a reliance on
repository files fails. (nbdev-test runs every cell, hidden tests included, in the dev environment.) The kernels are
forked from a process that has imported what a page imports (torch, fastai, lottery_nb) and run nothing else
(tests/fork_kernel.py): a new process with an empty namespace, only its imports warm, 3-4 s of CPU less a page;
`test_a_forked_kernel_starts_as_a_fresh_one` compares one with a kernel started from scratch.

That environment also holds the **lowest** version of every dependency that pyproject.toml allows (fastai's own floor
for fastcore, 1.8): the floors are tested by running every page's shown cells on them (the hidden tests run
in the dev environment, under nbdev-test). torch and torchvision are the exception:
this machine installs one pair only (2.14.1 and 0.29.1, from local disk), so they are the newest, not the floor; the
torch floor was checked once by hand (see bench/floors.md)."""
import json, os, re, shutil, subprocess, sys, time
from pathlib import Path
import nbformat, pytest

root = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root/'tools'))
from docs import shown   # the cells a reader sees
INSTALL_S = 1800   # the install takes about 3 minutes here; deadlines hold on a machine three times slower
CELL_S = 900       # the slowest cell of a page takes under a minute here (nbs/_timings.json)
# The pages spread over pytest-xdist's processes (tests/conftest.py, SPREAD): they share one environment, made once per
# session (`shared_env`; tests/conftest.py starts it early), and each page runs in a folder of its own.

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

def _torch_closure():
    "The installed distributions torch and torchvision need, that are the pair or CUDA wheels: what `_link_torch` links"
    import importlib.metadata as md
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name as canon
    dists = {canon(d.metadata['Name']): d for d in md.distributions() if d.metadata['Name']}
    heavy = lambda n: n in ('torch', 'torchvision', 'triton') or n.startswith(('nvidia-', 'cuda-'))
    todo, seen = ['torch', 'torchvision'], set()
    while todo:
        n = todo.pop()
        if n in seen or n not in dists: continue
        seen.add(n)
        for r in map(Requirement, dists[n].requires or []):
            if heavy(canon(r.name)) and (r.marker is None or r.marker.evaluate({'extra': ''})): todo.append(canon(r.name))
    return [dists[n] for n in sorted(seen)]

def _link_torch(venv):
    """torch, torchvision and the CUDA wheels torch requires (about 5 GB unpacked here) put into `venv` as hard links to
    this environment's files (copies across filesystems, said in a line): they are the one pair on this disk, the same
    versions pip would unpack again, and pip then finds them installed. The rest is installed by pip, at the floors."""
    import sysconfig
    dest = Path(subprocess.run([str(venv/'bin'/'python'), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True, timeout=300).stdout.strip())
    copied = 0
    for d in _torch_closure():
        base = Path(d.locate_file(''))   # the folder its RECORD's paths are relative to
        assert d.files, f"{d.metadata['Name']} has no RECORD of its files here, so it cannot be linked into the fresh environment"
        for f in d.files:
            src = base/f
            if f.parts[0] == '..' or not src.is_file(): continue   # console scripts (bin/) name this environment's python
            to = dest/f; to.parent.mkdir(parents=True, exist_ok=True)
            if to.exists(): continue
            try: os.link(src, to)
            except OSError: shutil.copy2(src, to); copied += 1
    if copied: print(f'fresh venv: {copied} files of torch copied, not linked (another filesystem)')
    names = {p.name.split('-')[0].lower() for p in dest.glob('*.dist-info')}
    assert {'torch', 'torchvision'} <= names, f'torch and torchvision were not linked into {dest}: found {sorted(names)}'

# Python writes the bytecode of what it imports, as in Colab: these machines set PYTHONDONTWRITEBYTECODE, which would
# make every kernel and every process a page starts compile its imports again (an empty value turns it off)
BYTECODE = {'PYTHONDONTWRITEBYTECODE': ''}

def _install(tmp):
    "A virtual environment in `tmp`/venv with the package at its floors and ipykernel, registered as the kernel `lnbfresh`"
    src = tmp/'src'; src.mkdir()
    for f in ['pyproject.toml', 'README.md', 'LICENSE']: shutil.copy(root/f, src/f)
    shutil.copytree(root/'lottery_nb', src/'lottery_nb', ignore=shutil.ignore_patterns('__pycache__'))
    venv = tmp/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    py = venv/'bin'/'python'
    t0 = time.time()
    _link_torch(venv)
    floors = tmp/'floors.txt'; floors.write_text('\n'.join(lowest_versions()) + '\n')
    # the export and many-seeds pages need their extras. Not byte-compiled by pip (every module: 59 s of CPU here against
    # 34 without); the environment's processes write the bytecode of what they import instead (BYTECODE), about 3 s of CPU once
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-compile', f'{src}[export,cluster,hub]', 'ipykernel', '-c', str(floors)],
                       capture_output=True, text=True, timeout=INSTALL_S)
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
                                                    env={'PATH': f"{venv/'bin'}{os.pathsep}{os.environ['PATH']}", **BYTECODE})))   # the venv's own `lottery_nb` command first, as in Colab

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

FORK = Path(__file__).resolve().parent/'fork_kernel.py'
ZYGOTE_S = 300   # the zygote's imports take 5 s here

def start_zygote(py, env, name, log):
    """tests/fork_kernel.py's zygote in the fresh environment's Python `py`, with the environment its kernels get:
    returns the process once it has imported what the pages import"""
    import select
    z = subprocess.Popen([py, str(FORK), 'serve', name], stdout=subprocess.PIPE, stderr=open(log, 'w'), text=True, env=env)
    ready, _, _ = select.select([z.stdout], [], [], ZYGOTE_S)
    line = z.stdout.readline() if ready else ''
    if line.strip() != 'ready':
        z.kill(); z.wait()
        pytest.fail(f'the kernels\' zygote did not start within {ZYGOTE_S} s:\n{Path(log).read_text()[-3000:]}')
    return z

ZYGOTE = {}   # this test process's zygote: its process and log

@pytest.fixture(scope='module')
def fresh_env(tmp_path_factory):
    """The fresh environment's kernels, with IN_TEST set as nbdev-test sets it (the long tutorials run their smaller
    settings): `lnbfresh`, started from scratch, and `lnbfork`, forked from a zygote of this test process that has
    imported what a page imports and nothing else (tests/fork_kernel.py; `test_a_forked_kernel_starts_as_a_fresh_one`)"""
    env = shared_env(tmp_path_factory)
    mine = tmp_path_factory.mktemp('kernels')
    spec = json.loads((env/'jupyter'/'kernels'/'lnbfresh'/'kernel.json').read_text())
    mp = pytest.MonkeyPatch(); mp.setenv('JUPYTER_PATH', f"{mine}{os.pathsep}{env/'jupyter'}")   # undone as the module ends
    mp.setenv('IN_TEST', '1')
    try:
        name = f'lottery_nb-zygote-{os.getpid()}-{time.time_ns()}'
        ZYGOTE.update(proc=start_zygote(spec['argv'][0], {**os.environ, **spec['env']}, name, mine/'zygote.log'), log=mine/'zygote.log')
        kdir = mine/'kernels'/'lnbfork'; kdir.mkdir(parents=True)
        (kdir/'kernel.json').write_text(json.dumps(dict(spec, argv=[spec['argv'][0], str(FORK), 'launch', name, '-f', '{connection_file}'],
                                                        display_name='lottery_nb fresh, forked')))
        yield env
    finally:
        if 'proc' in ZYGOTE: ZYGOTE['proc'].kill(); ZYGOTE.pop('proc').wait()
        mp.undo()

def zygote_alive():
    "Fail with the zygote's log if it has ended: every forked kernel would then fail to start"
    z = ZYGOTE['proc']
    if z.poll() is not None: pytest.fail(f"the kernels' zygote ended (exit {z.returncode}):\n{ZYGOTE['log'].read_text()[-3000:]}")

NOTEBOOKS = sorted(p.name for p in (root/'nbs').glob('*.ipynb'))

def _shown(path): return shown(nbformat.read(path, as_version=4))

# Pages for contributors, which need the dev extra (nbdev) and a clone of the repository: their shown cells run in a
# fresh kernel of the environment running the tests, in the repository's nbs/, which they must leave as it was
DEV = {'97_showdoc.ipynb': 'it documents the docs renderer, a module for contributors that imports nbdev (dev extra)'}
SHOWN = [n for n in NOTEBOOKS if _shown(root/'nbs'/n).cells]   # 96_developing shows no code: nothing to run

def test_the_long_pages_named_for_the_order_are_pages():
    "tests/conftest.py runs these pages first among the fresh-environment tests: a renamed page would silently lose its place"
    from conftest import LONG_PAGES
    assert {f'{p}.ipynb' for p in LONG_PAGES} <= set(SHOWN)

def test_every_page_but_one_shows_code():
    "A page whose every cell is hidden would pass the copy test by running nothing: the only one is the contributors' guide"
    assert sorted(set(NOTEBOOKS) - set(SHOWN)) == ['96_developing.ipynb']

def _run(nb, kernel, path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    assert nb.cells, 'no shown cell to run'
    try: NotebookClient(nb, kernel_name=kernel, timeout=CELL_S, startup_timeout=300,   # a cell, a kernel's start
                        resources={'metadata': {'path': str(path)}}).execute()
    except CellExecutionError as e:
        pytest.fail(f'a shown cell failed when run with the hidden cells left out:\n{str(e)[-3000:]}', pytrace=False)

def _outputs(cells, kernel, path, **kw):
    "Run code `cells` in a new kernel of `kernel`: what each cell printed to stdout"
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name=kernel, resources={'metadata': {'path': str(path)}}, **{'timeout': CELL_S, 'startup_timeout': 300, **kw}).execute()
    return [''.join(o.get('text', '') for o in c.outputs if o.get('name') == 'stdout') for c in nb.cells]

PROBE = ['print(sorted(dir()))',   # the first thing a page finds defined
         'import json, os, signal, sys, threading, warnings, matplotlib, torch\nfrom fastai.vision.all import *\n'
         'from lottery_nb.all import *\n'
         'def target(f):\n    try: return os.readlink(f"/proc/self/fd/{f}").split(":")[0]\n    except OSError: return None   # the listing\'s own\n'
         'ipy = os.path.realpath(get_ipython().profile_dir.location)   # history.sqlite, its journal, and their folder, synced by sqlite\n'
         'fds = sorted(t for t in map(target, os.listdir("/proc/self/fd")) if t not in (None, "anon_inode")\n'
         '       and not (t == ipy or t.startswith(ipy + os.sep) or "history.sqlite" in t))\n'
         'handler = lambda h: f"{h.__module__}.{h.__qualname__}" if callable(h) else str(h)\n'
         'print(json.dumps(dict(cwd=os.getcwd(), argv0=sys.argv[0], path=sys.path, env=dict(os.environ), backend=matplotlib.get_backend(),\n'
         '    leader=os.getsid(0) == os.getpgid(0) == os.getpid(), main=sys.modules["__main__"].__name__, warn=[str(f) for f in warnings.filters],\n'
         '    signals={s.name: handler(signal.getsignal(s)) for s in signal.valid_signals() if isinstance(s, signal.Signals)},\n'
         '    mask=sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, []))), stdout=type(sys.stdout).__name__,\n'
         '    fds=fds, threads=sorted(t.name for t in threading.enumerate() if t.name != "launcher watch"),\n'
         '    torch_threads=torch.get_num_threads())))',
         'import random, numpy as np\nprint(os.getpid(), random.random(), np.random.rand(), torch.initial_seed())']

def _dead(pid): return not Path(f'/proc/{pid}').exists() or Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()[0] in 'ZX'

def _until_dead(pids, what):
    end = time.monotonic() + 60
    while not all(map(_dead, pids)) and time.monotonic() < end: time.sleep(0.1)
    assert all(map(_dead, pids)), what

def test_a_forked_kernel_starts_as_a_fresh_one(fresh_env, tmp_path):
    """The pages run in kernels forked from a zygote that has imported torch, fastai and lottery_nb: each starts as a
    kernel started from scratch does (the names defined, folder, argv, sys.path, environment, plotting backend, session,
    warning filters, signal handlers and mask, open files, threads), in a process of its own that ends with it, with
    nothing left by the page before it. Left out of the comparison: the kernel's thread that watches its launcher, and
    the open files of kinds that differ in number between runs of the same kernel (anon_inode: epoll, eventfd, pidfd;
    IPython's history database, its journal and their folder, which sqlite opens to sync, all from a thread of its own)"""
    zygote_alive()
    cold = _outputs(PROBE, 'lnbfresh', tmp_path)
    first = _outputs([*PROBE, 'x = 1; torch.left_by_the_page_before = 1'], 'lnbfork', tmp_path)
    second = _outputs([*PROBE, 'print("x" in dir(), hasattr(torch, "left_by_the_page_before"))'], 'lnbfork', tmp_path)
    for o in (first, second):
        assert o[0] == cold[0], (cold[0], o[0])
        a, b = json.loads(cold[1]), json.loads(o[1])
        assert a['leader'], 'a cold kernel leads a session of its own'
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    assert second[3].split() == ['False', 'False']
    runs = [o[2].split() for o in (cold, first, second)]
    assert all(len({r[i] for r in runs}) == 3 for i in range(4)), runs   # pids; random's, numpy's and torch's states
    _until_dead([int(r[0]) for r in runs], 'a kernel outlived its notebook')

def test_a_forked_kernel_is_interrupted(fresh_env, tmp_path):
    "A cell past its time limit, with the client set to interrupt: the interrupt reaches the forked kernel and its subprocess"
    zygote_alive()
    out = _outputs(['import subprocess, time\np = subprocess.Popen(["sleep", "600"])\n'
                    'try: time.sleep(600)\nexcept KeyboardInterrupt: print("interrupted", p.wait(60))'],
                   'lnbfork', tmp_path, timeout=5, interrupt_on_timeout=True)
    assert out[0].split() == ['interrupted', '-2'], out   # the sleep got SIGINT too, as the kernel's process group does

def test_a_forked_kernel_stuck_in_a_cell_is_stopped(fresh_env, tmp_path):
    "A cell past its time limit: the client kills the launcher; the forked kernel and its subprocess end with it"
    from nbclient.exceptions import CellTimeoutError
    zygote_alive()
    pids = tmp_path/'pids'
    with pytest.raises(CellTimeoutError):
        _outputs([f'import os, subprocess, time\np = subprocess.Popen(["sleep", "600"])\n'
                  f'open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{p.pid}}")\ntime.sleep(600)'], 'lnbfork', tmp_path,
                 timeout=5, shutdown_kernel='immediate')
    _until_dead([int(p) for p in pids.read_text().split()], 'the forked kernel or its subprocess outlived its launcher')

@pytest.mark.slow
@pytest.mark.parametrize('name', [n for n in SHOWN if n not in DEV])
def test_page_runs_alone_in_fresh_env(fresh_env, name, tmp_path):
    """The page's shown cells, in order, hidden cells left out, in a fresh kernel (forked, see above) of the fresh
    environment at the floors, in a folder holding that page alone: it makes its own data and paths"""
    zygote_alive()
    shutil.copy(root/'nbs'/name, tmp_path/name)
    _run(_shown(tmp_path/name), 'lnbfork', tmp_path)

@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(DEV))
def test_contributor_page_runs_alone(name, monkeypatch, tmp_path):
    "A contributor's page: its shown cells alone, in a fresh kernel of this environment, in the repository's nbs/, left as it was"
    kdir = tmp_path/'kernels'/'lnbdev'; kdir.mkdir(parents=True)   # this very Python, whatever `python3` names elsewhere
    (kdir/'kernel.json').write_text(json.dumps(dict(argv=[sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                                                    display_name='lottery_nb dev', language='python')))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path)); monkeypatch.setenv('IN_TEST', '1')
    listing = lambda: sorted((str(p), p.stat().st_mtime) for p in (root/'nbs').rglob('*'))
    before = listing()
    _run(_shown(root/'nbs'/name), 'lnbdev', root/'nbs')
    assert listing() == before, 'the page wrote in the repository'

def _names(code):
    "Every name a cell's code uses, binds, imports or passes as a keyword, magics and shell lines turned into Python first"
    import ast
    from IPython.core.inputtransformer2 import TransformerManager
    tree = ast.parse(TransformerManager().transform_cell(code))
    for n in ast.walk(tree):
        if isinstance(n, ast.Name): yield n.id
        elif isinstance(n, ast.Attribute): yield n.attr
        elif isinstance(n, ast.alias): yield from (n.name.split('.') + [n.asname or ''])
        elif isinstance(n, ast.keyword) and n.arg: yield n.arg
        elif isinstance(n, (ast.FunctionDef, ast.ClassDef)): yield n.name
        elif isinstance(n, ast.ImportFrom) and n.module: yield from n.module.split('.')

def _private(name): return name.startswith('_') and name != '_' and not re.fullmatch(r'__\w+__|_repr_\w+_', name)

def test_private_names_are_found():
    found = lambda code: sorted({n for n in _names(code) if _private(n)})
    assert found('from m import _f as f\nf(_x=1)\nx._y\n_z = 2\nimport a._b\n!ls _dir') == ['_b', '_f', '_x', '_y', '_z']
    assert found('%%time\nobj.__len__(); t._repr_html_(); _ = 1') == []

def test_shown_code_uses_no_private_name():
    "A reader copies what a page shows: it names nothing private (hidden cells may, to test the internals)"
    found = []
    for name in NOTEBOOKS:
        for c in _shown(root/'nbs'/name).cells:
            bad = sorted({n for n in _names(c.source) if _private(n)})
            if bad: found.append(f"{name} cell {c.get('id')}: {', '.join(bad)}")
    assert not found, 'shown code names private things:\n' + '\n'.join(found)

def test_shown_leaves_out_what_a_reader_does_not_see():
    "The filter the page test runs through: hidden, exported, output-only and Colab-only cells and markdown go; the rest stay in order"
    from nbformat.v4 import new_code_cell as code, new_markdown_cell as md, new_notebook
    cells = [code('#| default_exp x'), md('# x'), code('#| hide\nimport os'), code('# | hide\nimport os'), code('  #|hide\nimport os'),
             code('#| export\ndef f(): pass'), code('#|exporti\ndef _g(): pass'), code('#| exports\ndef h(): pass'),
             code('a = 1'), code('#| echo: false\nshow_doc(f)'), code('show_doc(f)'), code('#| eval: False\nuntar_data(URL)'),
             code('#| include: false # a note\nb = 2'), code('#| code-fold: true\nc = 3'), code('hide = 4  # not a directive'),
             code('x = 1\n#| hide'), code('#| hide: false\ny = 1'), code('z = 1\nsecret = 2 #| hide_line'),
             code('p = 1', metadata={'nbdev': {'hide': 'true'}})]
    test = [c.source for c in shown(new_notebook(cells=cells)).cells]
    assert test == ['#| exports\ndef h(): pass', 'a = 1', '#| code-fold: true\nc = 3', 'hide = 4  # not a directive',
                    'x = 1\n#| hide', '#| hide: false\ny = 1', 'z = 1'], test
