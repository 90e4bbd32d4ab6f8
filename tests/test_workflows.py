"The GitHub workflows use nbdev 3's tools, and publish the folder nbdev 3 renders the docs into ([tool.nbdev] doc_path)."
import re, tomllib
from pathlib import Path
import yaml

root = Path(__file__).resolve().parent.parent
cfg = tomllib.loads((root/'pyproject.toml').read_text())['tool']['nbdev']
NBDEV2 = ['quarto-ghp@', 'nbdev-ci@', 'nbdev_docs', 'nbdev_test', 'nbdev_export', 'nbdev_clean']   # nbdev 2's actions and commands

def _steps(name):
    wf = yaml.safe_load((root/'.github'/'workflows'/name).read_text())
    return [s for job in wf['jobs'].values() for s in job['steps']]

def _run(steps): return '\n'.join(s.get('run', '') for s in steps)

def test_no_nbdev2_actions_or_commands():
    for f in (root/'.github'/'workflows').glob('*.y*ml'):
        txt = f.read_text()
        found = [o for o in NBDEV2 if re.search(rf'(?<![\w-]){re.escape(o)}', txt)]
        assert not found, f'{f.name} uses nbdev 2 names {found}; nbdev 3 has quarto-ghp3, nbdev3-ci and hyphenated commands'

def test_deploy_publishes_doc_path():
    steps = _steps('deploy.yaml')
    assert re.search(r'^\s*nbdev-docs\s*$', _run(steps), re.M), 'the deploy job must build the site with nbdev-docs'
    pub = [s['with']['publish_dir'] for s in steps if 'actions-gh-pages' in s.get('uses', '')]
    assert len(pub) == 1, pub
    assert Path(pub[0]).as_posix().strip('./') == cfg['doc_path'], \
        f"deploy publishes {pub[0]} but nbdev-docs writes the site to doc_path = {cfg['doc_path']!r}"
    assert any('quarto-actions/setup' in s.get('uses', '') for s in steps), 'nbdev-docs needs Quarto'

def test_ci_uses_nbdev3_check_and_runs_ci_script():
    steps = _steps('test.yaml')
    assert any(s.get('uses', '').startswith('fastai/workflows/nbdev3-ci@') for s in steps)
    assert 'bash .ci/run' in _run(steps)

def test_every_notebook_is_in_the_sidebar():
    "Quarto renders every notebook in nbs/; each must also have a place in the sidebar that both renderers read"
    side = yaml.safe_load((root/'nbs'/'sidebar.yml').read_text())
    def hrefs(items):
        for o in items:
            if isinstance(o, str): yield o
            elif 'href' in o: yield o['href']
            else: yield from hrefs(o.get('contents', []))
    listed = set(hrefs(side['website']['sidebar']['contents']))
    nbs = {p.name for p in (root/'nbs').glob('*.ipynb') if not p.name.startswith('_')}
    assert nbs == listed, f'not in the sidebar: {sorted(nbs - listed)}; listed but missing: {sorted(listed - nbs)}'
