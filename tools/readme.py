"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which these machines cannot install).

python tools/readme.py          # write README.md
python tools/readme.py --check  # exit 1 if README.md is not what nbs/index.ipynb gives
Hidden cells are left out, `#|` directives are stripped, and text outputs are kept as code blocks."""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n"

def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def _out(o):
    if o['output_type'] == 'stream': return None if o.get('name') == 'stderr' else ''.join(o['text'])
    d = o.get('data', {})
    if 'text/markdown' in d: return None
    txt = ''.join(d.get('text/plain', ''))
    return None if txt.startswith('<IPython.core.display.') else (txt or None)   # HTML progress tables have no text form

def render(nb_path=root/'nbs'/'index.ipynb'):
    nb, parts = json.loads(Path(nb_path).read_text()), []
    for c in nb['cells']:
        src = _src(c)
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        if c['cell_type'] == 'markdown': parts.append(src.strip()); continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f"```python\n{code}\n```")
        for o in c.get('outputs', []):
            t = _out(o)
            if t and t.strip(): parts.append(f"```\n{t.rstrip()}\n```")
    txt = '\n\n'.join(parts).replace('](images/', '](nbs/images/')
    return HEADER + _site_links(txt) + '\n'

def _site_links(txt):
    "Links to pages of the site (`cli.html`) point at the published site, since GitHub shows README.md outside it"
    import tomllib
    url = tomllib.loads((root/'pyproject.toml').read_text())['project']['urls']['Documentation'].rstrip('/')
    return re.sub(r'\]\((?!https?:|#)([\w.-]+\.html(?:#[\w.-]*)?)\)', lambda m: f']({url}/{m.group(1)})', txt)

if __name__ == '__main__':
    txt, dest = render(), root/'README.md'
    if '--check' in sys.argv:
        if not dest.exists() or dest.read_text() != txt:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/readme.py`")
        print('README.md is in sync with nbs/index.ipynb')
    else: dest.write_text(txt); print(f'wrote {dest}')
