"Project checks: README in sync with nbs/index.ipynb, CI running the README's commands, library matching notebooks."
import re, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _sh_blocks():
    txt = (root/'README.md').read_text()
    return re.findall(r'```sh\n(.*?)\n```', txt, re.S)

def test_readme_in_sync():
    r = subprocess.run([sys.executable, str(root/'tools'/'readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_readme_install_and_test_commands():
    "The first command installs from the repository (what a reader of the website can run); a clone installs with -e"
    import tomllib
    repo = tomllib.loads((root/'pyproject.toml').read_text())['project']['urls']['Repository']
    blocks = _sh_blocks()
    assert blocks[0] == f'pip install git+{repo} && lottery_nb', blocks[0]
    assert 'pip install -e . && lottery_nb' in blocks
    second = [b for b in blocks if 'nbdev-test' in b]
    assert len(second) == 1, blocks
    second = second[0]
    assert '\n' not in second and 'pip install -e ".[dev]"' in second and 'pytest' in second
    ci = (root/'.ci'/'run').read_text()
    assert second in ci, f'.ci/run does not run the README test command {second!r}'

def test_library_is_what_notebooks_export():
    "nbdev-export must not change lottery_nb/: the library is exactly what the notebooks export"
    def snap(): return {p.name: p.read_text() for p in (root/'lottery_nb').glob('*.py')}
    before = snap()
    subprocess.run(['nbdev-export'], cwd=root, check=True, capture_output=True)
    assert snap() == before, 'lottery_nb/ differs from what nbs/ exports: run nbdev-export and commit'

def test_notebook_outputs_are_fresh():
    "Committed outputs were made by the code that is committed (see README, 'The docs site')"
    sys.path.insert(0, str(root/'tools'))
    import docs
    assert not docs.stale(), f'stale outputs in {docs.stale()}: run python tools/docs.py --execute'

def test_every_name_the_library_uses_resolves():
    "pyflakes on lottery_nb/, with star imports resolved against the imported modules: a name a module uses but never gets fails"
    import importlib, re
    files = sorted(str(p.relative_to(root)) for p in (root/'lottery_nb').glob('*.py'))
    out = subprocess.run([sys.executable, '-m', 'pyflakes', *files], capture_output=True, text=True, cwd=root).stdout
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
