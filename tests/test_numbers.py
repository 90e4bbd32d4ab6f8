"""One number per experiment: every page, the README and bench/ quote the default experiment's committed run.

The default command (`lottery_nb`: IMP of the MNIST-1D MLP, 8 rounds of 20%, 3 seeds, both controls) has one
committed run, `runs/default/` (rows, settings, the printed tables, and run.json: date, machine, torch, threads).
A page quotes that experiment when it runs it (`RUNS_IT`, whole file), or in a *unit* that names it (`NAMES`): a
markdown cell, the outputs of a code cell, or a whole README/bench markdown file. In such a unit:

- every `m ± s` with three decimals is a (mean, std) the committed run has, for some round, arm and accuracy column;
- every `n ± m` in whole numbers is a (mean, std) of its early-stopping iterations or epochs;
- every "N training steps" is one of its step counts (all fits, one arm, or finding one round's mask);
- an arm named beside a bare accuracy ("reinit 0.551", "dense: test accuracy at early stopping 0.581") is a mean of
  that arm (`dense` is round 0), and a progress bar's "seed 2 round 8 (16.8% left) ticket: acc 0.632" is that fit's;

unless the number is another run of the same experiment recorded in `runs/default/other_runs.json` (with its date and
machine), and the unit cites that run (its `cite` text). A page that shows its own run of the setting (an entry with a
`page`) must cite it, give its date, and show the numbers recorded for it. Anything else is a number the committed run
does not hold: a page made from an older run, or a number typed by hand."""
import json, re
from pathlib import Path
import pandas as pd, pytest

root = Path(__file__).resolve().parent.parent
RUN = root/'runs'/'default'
RUNS_IT = {'nbs/10_tutorial.imp.ipynb': "runs the default experiment's every setting (tests/test_pages.py checks it)",
           'bench/jobs.md': 'bench/bench_jobs.py runs the default command itself, to time it'}
NAMES = ('default experiment', 'default command', 'default run', 'default study', 'default setup', "command's default",
         'runs/default', 'main experiment')   # how a page names the default experiment
ACC = ('es_acc', 'final_acc', 'best_acc')   # accuracy columns a page may summarise
ITERS = ('es_iter', 'es_epoch')
ARMS = {'ticket': 'ticket', 'reinit': 'reinit', 'random mask': 'random_mask', 'random_mask': 'random_mask'}

PAIR = re.compile(r'(?<![\d.])(\d\.\d{3}) ± (\d\.\d{3})(?![\d])')
IPAIR = re.compile(r'(?<![\d.,])(\d[\d,]*) ± (\d[\d,]*)(?![\d.,]*\d)')
STEPS = re.compile(r'(\d[\d,]*) training steps')
ARM_VALUE = re.compile(r'\b(dense|ticket|reinit|random[ _]mask)\b[^\d\n±]{0,40}?(?<![\d.])(0\.\d{3})(?!\d| ±)')
PROGRESS = re.compile(r'seed (\d+) round (\d+) \([\d.]+% left\) (\w+): acc (0\.\d{3})')   # find_ticket's progress bar: one fit's final_acc

def committed(run=RUN):
    "What the committed run holds: its (mean, std) pairs as pages print them, each arm's means, its step counts"
    df = pd.read_csv(run/'results.csv')
    from lottery_nb.results import summarize
    pairs, ipairs, means = set(), set(), {}
    for m in ACC:
        for _, r in summarize(df, m).iterrows():
            sd = 0 if r['std'] != r['std'] else r['std']
            pairs.add((f"{r['mean']:.3f}", f"{sd:.3f}"))
            means.setdefault(r.arm, set()).add(f"{r['mean']:.3f}")
            if r['round'] == 0: means.setdefault('dense', set()).add(f"{r['mean']:.3f}")
    for m in ITERS:
        for _, r in summarize(df, m).iterrows():
            ipairs.add((f"{r['mean']:.0f}", f"{0 if r['std'] != r['std'] else r['std']:.0f}"))
    fits = {(str(r.seed), str(r['round']), r.arm): f"{r.final_acc:.3f}" for _, r in df.iterrows()}
    per_seed = df.seed.nunique()
    steps = {int(df.steps.sum()), json.loads((run/'run.json').read_text())['steps'],
             *(int(s) for s in df.groupby('arm').steps.sum()), *(int(s) for s in df.find_steps.unique()),
             *(int(s / per_seed) for s in df.groupby('arm').steps.sum()), int(df.steps.sum() / per_seed)}
    return dict(pairs=pairs, ipairs=ipairs, means=means, steps=steps, fits=fits)

def other_runs(run=RUN):
    "Other runs of the same experiment that a page may quote, each with the text that cites it"
    f = run/'other_runs.json'
    return json.loads(f.read_text())['runs'] if f.exists() else []

def _text(o):
    "The text of one output of a code cell: stream, plain text, markdown"
    if 'text' in o: return ''.join(o['text'])
    d = o.get('data', {})
    return '\n'.join(''.join(d[k]) for k in ('text/markdown', 'text/plain') if k in d and not ''.join(d[k]).startswith('<'))

def units(path, name=None):
    "(where, text) of what file `path` shows a reader: markdown cells and each code cell's outputs, or the whole file"
    path = Path(path); name = name or str(path.relative_to(root))
    if path.suffix != '.ipynb': return [(name, path.read_text())]
    out = []
    for c in json.loads(path.read_text())['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': out.append((f"{name} cell {c.get('id')}", src))
        elif c['cell_type'] == 'code' and c.get('outputs'):
            out.append((f"{name} cell {c.get('id')} (outputs)", '\n'.join(_text(o) for o in c['outputs'])))
    return out

def unquoted(path, name=None, run=RUN):
    "Every number `path` quotes for the default experiment that the committed run does not hold: (where, quote)"
    name = name or str(Path(path).relative_to(root))
    held, others, bad = committed(run), other_runs(run), []
    whole = Path(path).read_text()
    for o in others:   # a page that shows its own run of the experiment says which run it is, and shows that run
        if o.get('page') != name: continue
        for t in (o['cite'], o['date']):
            if t not in whole: bad.append((name, f"its own run of the default setting, without {t!r}"))
        bad += [(name, f"{m} ± {s} (recorded for its run, not on the page)") for m, s in o['pairs'] if f'{m} ± {s}' not in whole]
    for where, txt in units(path, name):
        if name not in RUNS_IT and not any(n in txt for n in NAMES): continue
        cited = [o for o in others if o['cite'] in txt]
        ok_pair = lambda p: p in held['pairs'] or any(list(p) in o['pairs'] for o in cited)
        for m in PAIR.finditer(txt):
            if not ok_pair(m.groups()): bad.append((where, m.group(0)))
        for m in IPAIR.finditer(txt):
            p = tuple(x.replace(',', '') for x in m.groups())
            if p not in held['ipairs']: bad.append((where, m.group(0)))
        for m in STEPS.finditer(txt):
            if int(m.group(1).replace(',', '')) not in held['steps']: bad.append((where, m.group(0)))
        for m in PROGRESS.finditer(txt):
            if held['fits'].get(m.groups()[:3]) != m.group(4): bad.append((where, m.group(0)))
        for m in ARM_VALUE.finditer(PROGRESS.sub('', txt)):
            arm = ARMS.get(m.group(1).replace('_', ' '), m.group(1))
            if m.group(2) not in held['means'].get(arm, set()) and not any(m.group(2) in o['means'].get(arm, []) for o in cited):
                bad.append((where, m.group(0)))
    return bad

def pages():
    return sorted([*(root/'nbs').glob('*.ipynb'), root/'README.md', *(root/'bench').glob('*.md')])

def test_the_checker_sees_a_drifted_quote(tmp_path):
    "The check itself: the committed numbers pass, a number a point off, a wrong std, a wrong step count or arm value fail"
    held = committed()
    m, s = sorted(held['pairs'])[0]
    good = f"The default command's ticket: {m} ± {s}, dense 0.581, 54,000 training steps."
    (tmp_path/'ok.md').write_text(good)
    assert unquoted(tmp_path/'ok.md', 'ok.md') == []
    for drift in (f"{float(m) + 0.01:.3f} ± {s}", f"{m} ± {float(s) + 0.001:.3f}", '55,000 training steps', 'reinit 0.999',
                  '999 ± 21', 'seed 0 round 1 (80.0% left) ticket: acc 0.999'):
        (tmp_path/'bad.md').write_text(good + ' ' + drift)
        assert [q for _, q in unquoted(tmp_path/'bad.md', 'bad.md')] == [drift], drift
    (tmp_path/'other.md').write_text(f"Unrelated: {float(m) + 0.01:.3f} ± {s}.")   # names no default experiment
    assert unquoted(tmp_path/'other.md', 'other.md') == []

def test_a_page_with_its_own_run_must_say_which(tmp_path):
    "A page recorded as showing its own run of the setting fails without that run's citation, date and numbers"
    o = next(o for o in other_runs() if o.get('page'))
    shown = ' '.join(' ± '.join(p) for p in o['pairs'])
    (tmp_path/'p.md').write_text(f"The default command's setting, run here: {shown}.")
    bad = [q for _, q in unquoted(tmp_path/'p.md', o['page'])]
    assert [q for q in bad if 'without' in q] == [f"its own run of the default setting, without {t!r}" for t in (o['cite'], o['date'])]
    assert len(bad) == 2 + len(o['pairs'])   # and, uncited, its numbers are not the committed run's
    (tmp_path/'p.md').write_text(f"The default command's setting: {o['cite']}, made on {o['date']}.")
    bad = [q for _, q in unquoted(tmp_path/'p.md', o['page'])]
    assert len(bad) == len(o['pairs']) and all('not on the page' in q for q in bad), bad
    (tmp_path/'p.md').write_text(f"The default command's setting: {o['cite']}, made on {o['date']}. Results: {shown}.")
    assert unquoted(tmp_path/'p.md', o['page']) == []

def test_another_runs_numbers_need_their_citation(tmp_path):
    "A number of a recorded other run passes only where the unit cites that run"
    o = next(o for o in other_runs() if o['pairs'])
    q = ' ± '.join(o['pairs'][0])
    (tmp_path/'a.md').write_text(f"The default command, on another machine: {q}.")
    assert [x for _, x in unquoted(tmp_path/'a.md', 'a.md')] == [q]
    (tmp_path/'b.md').write_text(f"The default command, on another machine ({o['cite']}): {q}.")
    assert unquoted(tmp_path/'b.md', 'b.md') == []

def test_the_committed_run_is_whole():
    "runs/default has every file a reader needs, and run.json says when, where and how it ran"
    for f in ('results.csv', 'settings.json', 'output.txt', 'results.png', 'ticket_card.md', 'run.json'):
        assert (RUN/f).exists(), f'runs/default/{f} is missing'
    info = json.loads((RUN/'run.json').read_text())
    assert {'date', 'machine', 'torch', 'threads', 'steps', 'command'} <= info.keys(), sorted(info)
    df = pd.read_csv(RUN/'results.csv')
    assert info['steps'] == df.steps.sum(), (info['steps'], df.steps.sum())
    assert sorted(df.seed.unique()) == [0, 1, 2] and df['round'].max() == 8 and set(df.arm) == {'ticket', 'reinit', 'random_mask'}

def test_the_printed_tables_are_the_rows():
    "output.txt, the command's printed tables, is what summary_table makes of results.csv"
    from lottery_nb.results import summary_table
    df = pd.read_csv(RUN/'results.csv')
    out = (RUN/'output.txt').read_text()
    assert summary_table(df).to_string() in out
    assert summary_table(df, 'es_iter', fmt='.0f').to_string() in out

@pytest.mark.parametrize('page', [str(p.relative_to(root)) for p in pages()])
def test_pages_quote_the_committed_run(page):
    "Every number a page quotes for the default experiment is the committed run's (or a cited, recorded other run's)"
    bad = unquoted(root/page)
    assert not bad, (f"{page} quotes numbers of the default experiment that runs/default does not hold (quote the committed "
                     f"run, or record another run in runs/default/other_runs.json and cite it): {bad}")
