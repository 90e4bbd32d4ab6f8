"""Build the docs site into docs/, without Quarto (see README, "The docs site").

python tools/docs.py              # render docs/ from the notebooks as committed, outputs included
python tools/docs.py --execute    # first run every notebook in a real Jupyter kernel and save its outputs
python tools/docs.py --check      # exit 1 if a notebook's saved outputs are older than its code
python tools/docs.py --out DIR    # render into DIR instead of docs/

Rendering is nbdev's own processing (`nbdev-proc-nbs`: show_doc API reference, doc links, hidden cells), then
`smalldocs render`, which reads the same nbs/_quarto.yml that Quarto would. Pages are named as nbdev names them
(`core.html`, not `00_core.html`), so nbdev's links resolve."""
import argparse, copy, hashlib, json, re, shutil, subprocess, sys, time
from pathlib import Path

root = Path(__file__).resolve().parent.parent
nbs, proc = root/'nbs', root/'_proc'
MANIFEST = nbs/'_outputs.json'
TIMINGS = nbs/'_timings.json'   # how long each notebook took to execute, with the date and the machine: the one place for times

def notebooks(): return sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith('_'))

def code_hash(nb_path):
    "A hash of a notebook's code cells: what its outputs depend on"
    nb = json.loads(Path(nb_path).read_text())
    src = [''.join(c['source']) if isinstance(c['source'], list) else c['source'] for c in nb['cells'] if c['cell_type'] == 'code']
    return hashlib.sha1('\n\x00'.join(src).encode()).hexdigest()[:16]

def stale():
    "Notebooks whose code changed since their outputs were saved"
    m = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    return [p.name for p in notebooks() if m.get(p.name) != code_hash(p)]

def skip_eval_false(nb):
    "Tag the cells nbdev does not run (`#| eval: false`, e.g. Colab-only downloads) so that nbclient skips them too"
    for c in nb.cells:
        if c.cell_type == 'code' and re.search(r'^#\|\s*eval:\s*false\s*$', c.source, re.M):
            c.metadata.setdefault('tags', [])
            if 'skip-execution' not in c.metadata['tags']: c.metadata['tags'].append('skip-execution')
    return nb

def _off(v): return str(v).split('#')[0].strip().lower() == 'false'

def shown(nb):
    """The code a reader of the page sees and can copy, as a notebook of its own: every code cell except the hidden
    ones (`#| hide`), the exported ones (the page shows their API, not their source; `#| exports` is shown), the
    output-only ones (`#| echo: false`, `#| include: false`, `show_doc` calls) and the Colab-only ones
    (`#| eval: false`); lines marked `#| hide_line` dropped. Directives are read as nbdev reads them (fastcore's
    `NbCell.directives`: leading comment lines in any spacing, or the cell's `nbdev` metadata)."""
    from fastcore.nbio import dict2nb
    nb = copy.deepcopy(nb); keep = []
    code = [c for c in nb.cells if c.cell_type == 'code']
    parsed = dict2nb(dict(cells=[dict(cell_type='code', source=c.source, metadata=dict(c.metadata), outputs=[]) for c in code],
                          metadata={}, nbformat=4, nbformat_minor=5)).cells
    for c, d in zip(code, (o.directives for o in parsed)):
        if ('hide' in d and not _off(d['hide'])) or d.keys() & {'export', 'exporti', 'default_exp'}: continue
        if any(_off(d.get(k, '')) for k in ('echo', 'include', 'eval')): continue
        lines = [l for l in c.source.splitlines() if not re.search(r'#\s*\|\s*hide_line\s*$', l)]
        body = [l for l in lines if l.strip() and not re.match(r'\s*#\s*\|', l)]
        if not body or body[0].startswith('show_doc'): continue   # directives alone; nbdev shows a show_doc's output only
        c.source, c.outputs = '\n'.join(lines), []
        keep.append(c)
    nb.cells = keep
    return nb

def _untag(nb):
    for c in nb.cells:
        tags = c.metadata.get('tags', [])
        if 'skip-execution' in tags:
            tags.remove('skip-execution')
            if not tags: del c.metadata['tags']

def execute(paths=None, timeout=900):
    "Run notebooks top to bottom in a Jupyter kernel (cwd nbs/), save their outputs, and record their code hashes"
    import nbformat
    from nbclient import NotebookClient
    m = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for p in paths or notebooks():
        t0 = time.time()
        nb = skip_eval_false(nbformat.read(p, as_version=4))
        NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(nbs)}}).execute()
        _untag(nb)
        nbformat.write(nb, p)
        m[p.name] = code_hash(p)
        record_time(p.name, time.time() - t0)
        print(f'executed {p.name} in {time.time()-t0:.0f} s', flush=True)
    MANIFEST.write_text(json.dumps(m, indent=1, sort_keys=True) + '\n')
    subprocess.run(['nbdev-clean'], cwd=root, check=True)

def machine():
    "This machine, in a few words: CPU, cores, GPU"
    import os, platform
    try: import torch; gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    except Exception: gpu = 'no GPU'
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.machine()) if Path('/proc/cpuinfo').exists() else platform.machine()
    return f'{cpu}, {os.cpu_count()} cores, {gpu}'

def record_time(name, seconds):
    "Keep how long notebook `name` took to execute, with the date and the machine, in nbs/_timings.json"
    t = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    t[name] = dict(seconds=round(seconds), date=time.strftime('%Y-%m-%d'), machine=machine())
    TIMINGS.write_text(json.dumps(t, indent=1, sort_keys=True) + '\n')

def _output_file(nb):
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        m = re.search(r'^output-file:\s*(\S+)\s*$', src, re.M)
        if c['cell_type'] == 'raw' and m: return m.group(1)

KATEX_CDN = 'https://cdn.jsdelivr.net/npm/katex@0.16.11/dist'

def _offline(site):
    "Serve KaTeX from the site itself (tools/katex) and drop the theme's web-font import: pages make no outside requests"
    for css in (site/'site_libs').rglob('*.css'):
        txt = css.read_text()
        if '@import url(http' in txt: css.write_text(re.sub(r'@import url\(https?://[^)]*\);?', '', txt))
    pages = [p for p in site.rglob('*.html') if KATEX_CDN in p.read_text()]
    if not pages: return
    shutil.copytree(root/'tools'/'katex', site/'site_libs'/'katex', dirs_exist_ok=True)
    for p in pages:
        rel = Path(*(['..'] * (len(p.relative_to(site).parts) - 1)), 'site_libs', 'katex').as_posix()
        p.write_text(p.read_text().replace(KATEX_CDN, rel))

def doc_url():
    "The published site's address, from [project.urls] Documentation (nbdev's doc links point there)"
    import tomllib
    return tomllib.loads((root/'pyproject.toml').read_text())['project']['urls']['Documentation'].rstrip('/') + '/'

def _local_links(site):
    "Make nbdev's doc links (absolute, to the published site) relative, so this site links within itself"
    url = doc_url()
    for p in site.rglob('*.html'):
        txt = p.read_text()
        if url in txt:
            rel = '../' * (len(p.relative_to(site).parts) - 1)
            p.write_text(txt.replace(f'href="{url}', f'href="{rel}'))

PROC = ("import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs()")   # nbdev-proc-nbs without its
# attempt to download Quarto and install it with sudo when it is missing: this build needs no Quarto, and installs nothing

def render(out=root/'docs'):
    "nbdev-proc-nbs, rename pages as nbdev names them, smalldocs render, move the site to `out`"
    shutil.rmtree(proc, ignore_errors=True)
    subprocess.run([sys.executable, '-c', PROC], cwd=root, check=True)
    names = {}
    for p in sorted(proc.glob('*.ipynb')):   # smalldocs names pages after their files: give each nbdev's page name
        nb = json.loads(p.read_text())
        of = _output_file(nb)
        for c in nb['cells']:
            if c['cell_type'] == 'raw':
                src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
                c['source'] = re.sub(r'^output-file:.*\n', '', src, flags=re.M)
        new = Path(of).stem + '.ipynb' if of else p.name
        if new != p.name: names[p.name] = new
        p.unlink(); (proc/new).write_text(json.dumps(nb))
    for p in list(proc.glob('*.ipynb')) + [proc/'sidebar.yml']:
        txt = p.read_text()
        for old, new in names.items():
            txt = txt.replace(f'](/{old}', f']({new[:-6]}.html').replace(f']({old}', f']({new[:-6]}.html').replace(f'- {old}', f'- {new}').replace(f'href: {old}', f'href: {new}')
        p.write_text(txt)
    exe = Path(sys.executable).parent/'smalldocs'
    subprocess.run([str(exe) if exe.exists() else 'smalldocs', 'render', '--quiet', str(proc)], cwd=root, check=True)
    site = proc/'docs'
    _offline(site)
    _local_links(site)
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(site), str(out))
    shutil.rmtree(proc, ignore_errors=True)
    return out

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--execute', action='store_true'); ap.add_argument('--check', action='store_true')
    ap.add_argument('--out', default=str(root/'docs'))
    a = ap.parse_args()
    if a.check:
        s = stale()
        if s: sys.exit(f"outputs are stale (code changed since they were saved) in: {', '.join(s)}; run python tools/docs.py --execute")
        print('every notebook has fresh outputs'); sys.exit(0)
    if a.execute: execute()
    t0 = time.time(); out = render(a.out)
    print(f'rendered {len(list(out.rglob("*.html")))} pages into {out} in {time.time()-t0:.0f} s')
