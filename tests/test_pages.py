"""Code a page shows outside an executed cell: every fenced block in a markdown cell, and the CLI page's table of
the paper's commands. Each is either run here or checked against what it describes; a new block that no test
checks fails `test_every_block_outside_a_cell_is_checked`."""
import json, re, shlex, shutil
from pathlib import Path
import pytest, torch

root = Path(__file__).resolve().parent.parent

def blocks():
    "(notebook, cell id, language, code) of every fenced block in a markdown cell of nbs/"
    out = []
    for p in sorted((root/'nbs').glob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] != 'markdown': continue
            for m in re.finditer(r'```(\w*)\n(.*?)```', ''.join(c['source']), re.S):
                out.append((p.name, c['id'], m.group(1), m.group(2)))
    return out

def block(nb, cid):
    found = [b[3] for b in blocks() if b[:2] == (nb, cid)]
    assert len(found) == 1, f'{nb} cell {cid}: expected one block, found {len(found)}'
    return found[0]

# (notebook, cell id) -> the test that runs or checks its block
CHECKED = {
    ('index.ipynb', 'c001'): 'test_project.py::test_every_pip_install_of_lottery_nb_goes_through_the_repository; '
                             'test_readme_install_and_test_commands (the same lines, in the README made from it)',
    ('index.ipynb', 'q010'): 'test_the_test_command_is_the_one_ci_runs',
    ('96_developing.ipynb', 'v001'): 'test_the_test_command_is_the_one_ci_runs',
    ('10_distributed.ipynb', 'd003'): 'test_distributed.py::test_the_pages_script_runs_as_printed (with torchrun, the '
                                      "page's other launcher); test_the_launch_line_runs_the_pages_script",
    ('07b_store.ipynb', 'st005'): 'test_the_store_layout_is_what_a_run_writes',
    ('13_ticket_format.ipynb', 'tf014'): 'test_the_hub_block_runs_against_a_local_stand_in',
    ('97_showdoc.ipynb', 'sd002'): 'test_the_showdoc_settings_are_the_projects',
}

def test_every_block_outside_a_cell_is_checked():
    "A code block in prose runs nowhere by itself: each one must be named here with the test that checks it"
    found = {b[:2] for b in blocks()}
    assert found - CHECKED.keys() == set(), f'blocks no test checks: {sorted(found - CHECKED.keys())}'
    assert CHECKED.keys() - found == set(), f'checks of blocks that are gone: {sorted(CHECKED.keys() - found)}'

def test_the_test_command_is_the_one_ci_runs():
    ci = (root/'.ci'/'run').read_text()
    for nb, cid in [('index.ipynb', 'q010'), ('96_developing.ipynb', 'v001')]:
        cmd = block(nb, cid).strip()
        assert cmd in ci, f'{nb}: {cmd!r} is not what .ci/run runs'

def test_the_launch_line_runs_the_pages_script():
    "The page saves its script as train.py and launches that file, with the variable the script reads"
    nb = json.loads((root/'nbs'/'10_distributed.ipynb').read_text())
    script = next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code' and '# train.py' in ''.join(c['source']))
    lines = [l.split('#')[0].split() for l in block('10_distributed.ipynb', 'd003').strip().splitlines()]
    launch = next(l for l in lines if 'launch' in l)
    assert launch[0].startswith('DATA=') and launch[-1] == 'train.py', launch
    assert "os.environ.get('DATA'" in script or 'os.environ["DATA"]' in script or "environ.get('DATA'" in script, \
        'the launch line sets DATA, which the script does not read'
    value = launch[0].split('=', 1)[1]
    from lottery_nb.data import DATASETS
    assert value in DATASETS, f'DATA={value} is not a dataset name ({list(DATASETS)})'

def test_the_showdoc_settings_are_the_projects():
    import tomllib
    nbdev = tomllib.loads((root/'pyproject.toml').read_text())['tool']['nbdev']
    shown = tomllib.loads(block('97_showdoc.ipynb', 'sd002'))['tool']['nbdev']
    assert {k: nbdev.get(k) for k in shown} == shown

@pytest.fixture(scope='module')
def cli_run(tmp_path_factory):
    "The command's own run, as small as it goes (one round, one epoch, seed 0, both controls), in a fresh folder"
    from lottery_nb.cli import main
    cwd = tmp_path_factory.mktemp('cli')
    mp = pytest.MonkeyPatch(); mp.chdir(cwd)
    torch.manual_seed(0)
    assert main(['--rounds', '1', '--epochs', '1', '--seeds', '0', '--no-progress']) == 0
    mp.undo()
    return cwd/'lottery_out'

def test_the_store_layout_is_what_a_run_writes(cli_run):
    "Every path the store page lists is in a run's folder, and every file of the folder is listed"
    listed, stack = set(), []
    for line in block('07b_store.ipynb', 'st005').splitlines():
        if not line.strip() or line.strip() == '...': continue
        depth = (len(line) - len(line.lstrip())) // 2
        name, _, comment = line.strip().partition(' ')
        stack[depth:] = [name.rstrip('/')]
        if depth: listed.add('/'.join(stack[1:]))
        for other in re.findall(r'round\d+/[\w.]+\.\w+', comment):   # "round1/reinit.json, ..." in a comment
            listed.add('/'.join(stack[1:-1] + [other]))
    assert 'seed0/.lock' in listed and 'seed0/round1/reinit.json' in listed, listed   # the parse itself
    assert not (cli_run/'seed0'/'.lock').exists(), 'the lock is held only while a job runs the seed'
    missing = sorted(p for p in listed - {'seed0/.lock', 'failures.log'} if not (cli_run/p).exists())   # no fit failed in this run
    assert not missing, f'listed on the store page, not written by a run: {missing}'
    cli_extras = {'results.png', 'ticket'}   # what the command adds beside the store (the CLI page lists them)
    written = {str(p.relative_to(cli_run)) for p in cli_run.rglob('*') if p.is_file()}
    unlisted = sorted(p for p in written if p not in listed and p.split('/')[0] not in cli_extras
                      and not any(p.startswith(d + '/') for d in listed if '.' not in d))
    assert not unlisted, f'written by a run, not on the store page: {unlisted}'

def test_the_hub_block_runs_against_a_local_stand_in(cli_run, tmp_path, monkeypatch):
    "The ticket-format page's push and pull, with the Hub client's two calls answered from a local folder"
    hub = pytest.importorskip('huggingface_hub', reason="the Hub block needs the hub extra: pip install -e '.[hub]' (the dev extra has it)")
    remote = tmp_path/'hub'
    class Api:
        def __init__(self, token=None): pass
        def create_repo(self, repo_id, exist_ok=False, private=False): (remote/repo_id).mkdir(parents=True, exist_ok=exist_ok)
        def upload_folder(self, folder_path, repo_id, allow_patterns, commit_message):
            for pat in allow_patterns:
                for f in Path(folder_path).glob(pat): shutil.copy(f, remote/repo_id/f.name)
    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        if not (remote/repo_id).is_dir(): raise RuntimeError(f'no repository {repo_id}')
        return str(remote/repo_id)
    monkeypatch.setattr(hub, 'HfApi', Api)
    monkeypatch.setattr(hub, 'snapshot_download', snapshot_download)
    monkeypatch.chdir(cli_run.parent)
    import lottery_nb.all as lnb
    ns = {k: getattr(lnb, k) for k in lnb.__all__}
    exec(block('13_ticket_format.ipynb', 'tf014'), ns)
    sp, t = ns['sp'], lnb.read_ticket(cli_run/'ticket')
    assert sorted((remote/'your-name'/'mlp-mnist1d-ticket').iterdir()) != []
    got = lnb.get_masks(sp.model)
    assert got.keys() == t['masks'].keys()
    for name, m in t['masks'].items(): assert torch.equal(got[name].cpu(), m), name

def recipes():
    "The commands of the CLI page's table of the paper's setups, each in full"
    text = ''.join(''.join(c['source']) for c in json.loads((root/'nbs'/'09_cli.ipynb').read_text())['cells']
                   if c['cell_type'] == 'markdown' and "The paper's setups" in ''.join(c['source']))
    cmds, last = [], None
    for cell in re.findall(r'^\|[^|]*\| `([^`]*)` \|', text, re.M):
        cmd = cell.replace('...', last, 1) if cell.startswith('...') else cell
        cmds.append(cmd); last = cmd
    return cmds

def test_the_cli_page_has_its_four_setups():
    assert len(recipes()) == 4 and all(c.startswith('lottery_nb --preset ') for c in recipes()), recipes()

def test_the_setups_table_gives_the_presets_sizes():
    "Each paper row's fits and epochs are what its preset runs (3 seeds unless --seeds is given)"
    import math
    from lottery_nb.presets import PRESETS
    from lottery_nb.data import DOWNLOADS
    text = ''.join(''.join(c['source']) for c in json.loads((root/'nbs'/'09_cli.ipynb').read_text())['cells']
                   if c['cell_type'] == 'markdown' and "The paper's setups" in ''.join(c['source']))
    for cmd in recipes():
        if '--rounds' in cmd: continue   # the smaller row
        p = PRESETS[shlex.split(cmd)[2]]
        epochs = p.epochs(math.ceil((DOWNLOADS[p.dataset].n_train - p.valid) / p.bs))
        fits = (1 if '--seeds 0' in cmd else 3) * (1 + 3 * p.rounds)
        row = next(l for l in text.splitlines() if f'`{cmd}`' in l)
        assert f'{fits} fits of {epochs} epochs' in row and f'{p.rounds} rounds to' in row, (row, fits, epochs)

SHAPES = {'mnist': (1, 28, 28), 'cifar10': (3, 32, 32)}

@pytest.mark.parametrize('i', range(4))
def test_the_papers_commands_run_on_stand_in_data(i, tmp_path, monkeypatch):
    """Each command of the CLI page's table, as printed, with its download replaced by 64 random images of the
    dataset's shape and its budget cut to one round of one epoch, rewound to the start (added after it: argparse keeps
    the last). What it checks, that the printed options parse and the preset's model trains on its data's shape, takes
    one epoch; the big models' runs then take seconds."""
    from lottery_nb import cli, data
    from lottery_nb.presets import PRESETS
    cmd = recipes()[i]
    args = shlex.split(cmd)[1:]
    name = PRESETS[args[args.index('--preset') + 1]].dataset
    def stand_in(bs=64, seed=0, device=None, valid_pct=0.1, **kw):
        g = torch.Generator().manual_seed(0)
        x = lambda n: torch.randn(n, *SHAPES[name], generator=g)
        y = lambda n: torch.arange(n) % 10
        return data.tensor_dls(x(64), y(64), x(20), y(20), bs=min(bs, 32), x_test=x(20), y_test=y(20), device=device)
    monkeypatch.setitem(data.DATASETS, name, stand_in)
    monkeypatch.chdir(tmp_path)
    assert cli.main(args + ['--rounds', '1', '--epochs', '1', '--rewind', '0', '--no-progress', '--out', 'out']) == 0, cmd
    assert (tmp_path/'out'/'ticket'/'ticket.safetensors').exists()

# prose that quotes bench/README.md: (notebook, cell id, the numbers it quotes, as printed)
BENCH_QUOTES = [('03_sparsifier.ipynb', 'c004', ['0.205', '3.655']),
                ('05_data.ipynb', 'x53e1886', ['1.57', '1.25']),
                ('06_callback.ipynb', 'xd21ac77', ['1.25', '1.05'])]

@pytest.mark.parametrize('nb,cid,numbers', BENCH_QUOTES)
def test_numbers_quoted_from_the_benchmarks_are_the_benchmarks(nb, cid, numbers):
    "A page that quotes a measurement quotes bench/README.md (which has the date and the machine), rounded as printed"
    cell = next(''.join(c['source']) for c in json.loads((root/'nbs'/nb).read_text())['cells'] if c.get('id') == cid)
    bench = [float(x) for x in re.findall(r'\b\d+\.\d+\b', (root/'bench'/'README.md').read_text())]
    for s in numbers:
        assert s in cell, f'{nb} cell {cid} no longer quotes {s}: update BENCH_QUOTES'
        d = len(s.split('.')[1])
        assert any(f'{v:.{d}f}' == s for v in bench), f'{nb} quotes {s}, which bench/README.md does not have'

def cell(nb, cid):
    "The source of the code cell `cid` of notebook `nb`"
    return next(''.join(c['source']) for c in json.loads((root/'nbs'/nb).read_text())['cells'] if c.get('id') == cid)

def test_the_default_command_is_the_imp_tutorials_experiment(monkeypatch, tmp_path):
    "The CLI page says `lottery_nb` runs the IMP tutorial's experiment on the same data: every setting a results folder checks is equal"
    import lottery_nb.lottery as lot
    from lottery_nb.cli import main
    from lottery_nb.lottery import _configure, _Args
    from lottery_nb.store import _settings_diff
    ns = {}
    exec('from fastai.basics import *\nfrom lottery_nb.all import *\nFULL = True\n' + cell('10_tutorial.imp.ipynb', 'c005'), ns)   # its data and learner
    run = cell('10_tutorial.imp.ipynb', 'c007')
    assert "prune_pct=20, epochs=20, lr=3e-3" in run and "controls=('reinit', 'random_mask'), method='global'" in run, run
    tut = _configure(ns['learn_fn'], _Args(rounds=8, prune_pct=20, rewind=0, epochs=20, lr=3e-3, controls=('reinit', 'random_mask'),
                                           method='global', granularity='weight', criteria='large_final'), folder=True)
    class Stop(Exception): pass
    kw = {}
    def runner(learn_fn, **k): kw.update(k, learn_fn=learn_fn); raise Stop   # what the command would run, not run
    monkeypatch.setattr(lot, 'find_ticket', runner)
    with pytest.raises(Stop): main(['--out', str(tmp_path/'out'), '--no-progress'])
    cli = _configure(kw['learn_fn'], _Args(**{k: kw[k] for k in ('rounds', 'prune_pct', 'rewind', 'epochs', 'lr', 'controls', 'method',
                                                                  'layer_rates', 'early_bird')}, criteria='large_final'), folder=True)
    assert _settings_diff(tut.settings, cli.settings) == [], _settings_diff(tut.settings, cli.settings)
    assert kw['seeds'] == [0, 1, 2]
