"""Pages print what a reader should see: no committed output of a notebook (printed text, errors, displayed text) holds
a warning that a library printed, or a path of the machine that made the outputs.

A warning is a line as Python's `warnings` module prints it (`...: UserWarning: ...`, any `...Warning:`), or one that
starts with `Warning:` or `WARNING:`. A machine path is a folder of the machine that ran the notebook: an installed
package (`site-packages/`, `dist-packages/`, a `.venv/`), a home (`/root/`, `/home/...`), a temporary folder (`/tmp/`,
`/var/folders/`) or a work tree (`/work/`, `/opt/`). A temporary folder the page made itself counts too: it changes on
every run and means nothing to a reader (print the file's name, or its path relative to the folder, instead).
Each notebook is its own test, and a failure lists every offending cell by its id, with the line."""
import json, re
from pathlib import Path
import pytest

root = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (root/'nbs').glob('*.ipynb'))

WARNING = re.compile(r'\b\w*Warning: |^\s*(?:Warning|WARNING)\b:?', re.M)
MACHINE_PATH = re.compile(r'(?:site-packages|dist-packages|/\.venv)/'
                          r'|(?:^|(?<=[\s\'"(\[=:,]))/(?:root|home/[^/\s]+|tmp|var/folders|private/var|work|opt)/'
                          r'|\b[A-Z]:\\Users\\', re.M)

def output_texts(o):
    "The texts a reader sees in output `o`: printed streams, an error's name, message and traceback, and every text/* form"
    if o['output_type'] == 'stream': yield f"{o.get('name', 'stream')}", ''.join(o['text'])
    elif o['output_type'] == 'error': yield 'error', '\n'.join([f"{o['ename']}: {o['evalue']}", *o.get('traceback', [])])
    else:
        for mime, v in o.get('data', {}).items():
            if mime.startswith('text/'): yield mime, ''.join(v) if isinstance(v, list) else v

def offences(text):
    "(what, line) for each line of `text` that holds a warning or a machine path"
    for line in text.splitlines():
        if WARNING.search(line): yield 'warning', line
        elif MACHINE_PATH.search(line): yield 'machine path', line

def problems(nb_path):
    out = []
    for c in json.loads(Path(nb_path).read_text())['cells']:
        for i, o in enumerate(c.get('outputs', [])):
            for kind, text in output_texts(o):
                for what, line in offences(text):
                    out.append(f"{Path(nb_path).name} cell {c.get('id')} output {i} ({kind}): {what}: {line.strip()[:160]}")
    return out

def test_the_checks_catch_what_they_should():
    "The two patterns, on lines seen in this project's outputs and on lines a page may print"
    bad = ['/work/main/.venv/lib/python3.11/site-packages/fastai/callback/core.py:72: UserWarning: You are shadowing ...',
           "<string>:3: FutureWarning: `torch.jit.script` is deprecated", 'Warning: the kernel restarted',
           'saved to /tmp/tmpab12cd/ticket.safetensors', "PosixPath('/root/.fastai/data/mnist')", 'C:\\Users\\me\\ticket',
           "  File /home/alice/src/lottery_nb/core.py:10", 'WARNING:root:fell back to CPU']
    ok = ['ticket.safetensors: 12 kB', 'lottery_out/seed0/round1/ticket.json', 'https://github.com/lottery-nb/lottery-nb/tmp/x',
          'sparsity 80.0% (a warning sign?)', 'images/lth.gif: 91 kB', 'see bench/README.md']
    assert all(list(offences(l)) for l in bad), [l for l in bad if not list(offences(l))]
    assert not any(list(offences(l)) for l in ok), [l for l in ok if list(offences(l))]

@pytest.mark.parametrize('name', NOTEBOOKS)
def test_outputs_hold_no_warning_and_no_machine_path(name):
    found = problems(root/'nbs'/name)
    assert not found, f'{len(found)} output line(s) a reader should not see:\n' + '\n'.join(found)
