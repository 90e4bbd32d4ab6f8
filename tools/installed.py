"""Whether the active Python already has what `pip install -e ".[dev]"` would give it: this checkout installed editable,
its console scripts, and every requirement of the package and of its `dev` extra met (with the extras those ask for).
Exit 0 if so; else exit 1 with one line saying what is missing, and tools/test.sh runs pip (a fresh machine, a changed
pyproject.toml, a package removed by hand). Standard library only, plus pip's own copy of `packaging`."""
import json, sys
import importlib.metadata as md
try: import tomllib
except ImportError: sys.exit('python: the dev extra is to be installed: this Python (before 3.11) has no tomllib to read pyproject.toml with')
from pathlib import Path
try: from packaging.requirements import Requirement
except ImportError:
    try: from pip._vendor.packaging.requirements import Requirement
    except ImportError: sys.exit('installed: no `packaging` to read requirements with')

root = Path(__file__).resolve().parent.parent

def unmet(req, seen=()):
    "Why `req` (a Requirement) is not met here, or None; its extras' requirements are checked too"
    if req.marker is not None and not req.marker.evaluate({'extra': ''}): return None
    try: d = md.distribution(req.name)
    except md.PackageNotFoundError: return f'{req.name} is not installed'
    if req.specifier and not req.specifier.contains(d.version, prereleases=True): return f'{req.name} {d.version} does not meet {req}'
    for extra in sorted(req.extras):
        for r in map(Requirement, d.requires or []):
            if r.marker is not None and r.marker.evaluate({'extra': extra}) and not r.marker.evaluate({'extra': ''}):
                r.marker = None
                why = (r.name, extra) not in seen and unmet(r, (*seen, (r.name, extra)))
                if why: return f'{why} (for {req.name}[{extra}])'
    return None

def main():
    proj = tomllib.loads((root/'pyproject.toml').read_text())['project']
    found = list(md.distributions(name=proj['name']))   # a build's egg-info in the working folder is one too: the installed one says where from
    me = next((d for d in found if d.read_text('direct_url.json')), found[0] if found else None)
    if me is None: return f"{proj['name']} is not installed"
    url = json.loads(me.read_text('direct_url.json') or '{}')
    if not url.get('dir_info', {}).get('editable') or url.get('url') != root.as_uri():
        return f"{proj['name']} is installed from {url.get('url', 'an index')}, not editable from {root}"
    scripts = {e.name for e in me.entry_points if e.group == 'console_scripts'}
    if set(proj.get('scripts', {})) - scripts: return f"console scripts missing: {sorted(set(proj['scripts']) - scripts)}"
    for r in proj['dependencies'] + proj['optional-dependencies']['dev']:
        why = unmet(Requirement(r))
        if why: return why
    return None

if __name__ == '__main__':
    why = main()
    if why: sys.exit(f'python: the dev extra is to be installed: {why}')
    print(f'python: the dev extra is installed already (this checkout, editable): pip not run')
