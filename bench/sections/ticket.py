"""4. Time to a ticket: the default `lottery_nb` command split into training, pruning, resetting, evaluation and
files; the training loop against a bare PyTorch loop and what each lean setting saves; and seeds trained together
as one batched model (`torch.func.stack_module_state` with `vmap`)."""
import contextlib, copy, functools, io, shutil, statistics, tempfile, time
import numpy as np, torch
from torch import nn
from fastai.basics import Learner, CrossEntropyLossFlat, Adam, OptimWrapper, CastToTensor, accuracy
from fastai.data.load import DataLoader
from fastai.data.core import DataLoaders
from lottery_nb.callback import fast_events
from lottery_nb.data import mnist1d_dls
from lottery_nb.models import mlp
from ..fits import limit
from ..timing import interleave, timed, paired, boot_median, fmt_ci, md_table

class Split:
    "Exclusive wall time of wrapped functions, by phase (a wrapped call inside another is taken out of its parent)"
    def __init__(self): self.t, self.stack, self.undo = {}, [], []
    def wrap(self, owner, name, phase):
        f = getattr(owner, name)
        @functools.wraps(f)
        def g(*args, **kw):
            t0 = time.perf_counter(); self.stack.append(0.)
            try: return f(*args, **kw)
            finally:
                dt = time.perf_counter() - t0; inner = self.stack.pop()
                self.t[phase] = self.t.get(phase, 0.) + dt - inner
                if self.stack: self.stack[-1] += dt
        setattr(owner, name, g); self.undo.append((owner, name, f))
    def restore(self):
        for owner, name, f in reversed(self.undo): setattr(owner, name, f)

def ticket_split(a):
    "The `lottery_nb` command, in process, with its time split by phase"
    import pandas as pd
    from matplotlib.figure import Figure
    import lottery_nb.lottery as L, lottery_nb.train as T, lottery_nb.cli as cli, lottery_nb.sparsifier as S
    import safetensors.torch as ST
    argv = ['--no-progress'] + (['--rounds', '1', '--seeds', '1', '--epochs', '4'] if a.quick else []) + (['--rounds', '1', '--seeds', '1', '--epochs', '1'] if a.smoke else [])
    sp = Split()
    sp.wrap(Learner, '_do_epoch_train', 'training')
    sp.wrap(Learner, '_do_epoch_validate', 'evaluation (validation, test, untrained arms)')
    sp.wrap(T, '_evaluate', 'evaluation (validation, test, untrained arms)')
    for n in ('prune', 'proposed_masks'): sp.wrap(S.Sparsifier, n, 'pruning (ranking, masks)')
    for n in ('reset', 'snapshot'): sp.wrap(S.Sparsifier, n, 'resetting (rewind, snapshots)')
    for owner in (L, T): sp.wrap(owner, 'load_model_state', 'resetting (rewind, snapshots)')
    for owner, n in ((ST, 'save_file'), (pd.DataFrame, 'to_csv'), (Figure, 'savefig')): sp.wrap(owner, n, 'writing files')
    out = tempfile.mkdtemp()
    try:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()): rc = cli.main(argv + ['--out', out])
        total = time.perf_counter() - t0
    finally: sp.restore(); shutil.rmtree(out, ignore_errors=True)
    assert rc == 0, rc
    return argv, total, sp.t

def bare_loop(dls, epochs, seed=0):
    "Plain PyTorch: the same tensors, model and Adam; a shuffled pass per epoch and one evaluation pass"
    x, y = dls.train.dataset.x, dls.train.dataset.y; bs = dls.train.bs
    torch.manual_seed(seed); m = mlp(40); opt = torch.optim.Adam(m.parameters(), 1e-3, eps=1e-5); lf = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        m.train(); perm = torch.randperm(len(x))
        for i in range(0, len(x) - bs + 1, bs):
            j = perm[i:i+bs]; loss = lf(m(x[j]), y[j]); loss.backward(); opt.step(); opt.zero_grad()
        m.eval()
        with torch.no_grad():
            for xb, yb in dls.valid: (m(xb).argmax(-1) == yb).float().mean()
    return time.perf_counter() - t0

def stock_dls(dls):
    "The same data through fastai's stock `DataLoader`, which collates one sample at a time"
    ls = [DataLoader(dl.dataset, bs=dl.bs, shuffle=dl.shuffle, drop_last=dl.drop_last) for dl in dls.loaders]
    return DataLoaders(*ls, device='cpu')

LOOPS = {  # name: (stock loader?, fast_events?, torch Adam?, drop CastToTensor?)
    'fastai, stock DataLoader': (True, False, False, False),
    '+ TensorDL (lottery_nb default)': (False, False, False, False),
    '+ fast_events (lottery_nb default)': (False, True, False, False),
    '+ torch.optim.Adam (OptimWrapper)': (False, True, True, False),
    '+ without CastToTensor': (False, True, False, True)}

def fastai_loop(dls, epochs, cfg, seed=0):
    "Seconds of one fastai fit of the MNIST-1D MLP in the setting `cfg` (a row of `LOOPS`)"
    stock, fast, tadam, nocast = cfg
    torch.manual_seed(seed)
    opt = functools.partial(OptimWrapper, opt=functools.partial(torch.optim.Adam, eps=1e-5)) if tadam else Adam
    learn = Learner(stock_dls(dls) if stock else dls, mlp(40), loss_func=CrossEntropyLossFlat(), opt_func=opt, metrics=accuracy)
    if fast: fast_events(learn)
    if nocast: learn.remove_cb(CastToTensor)
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter(); learn.fit(epochs, 1e-3); return time.perf_counter() - t0

def loop_compare(a):
    "The plain PyTorch loop and each fastai setting, interleaved: epochs, and `{loop: (median s, ratio to plain)}`"
    dls = mnist1d_dls(seed=0); epochs = 1 if a.smoke else 2 if a.quick else 10
    if a.smoke: dls = limit(dls, 128, 128)
    arms = {'plain PyTorch loop': lambda: bare_loop(dls, epochs)}
    arms.update({k: functools.partial(fastai_loop, dls, epochs, cfg) for k, cfg in LOOPS.items()})
    t = interleave(arms, a.reps or (1 if a.smoke else 5 if a.quick else 11), seed=1, warmup=not a.smoke)
    ratio = paired(t, 'plain PyTorch loop')
    return epochs, {k: (statistics.median(v), ratio[k]) for k, v in t.items()}

def _train_seq(x, y, seeds, hidden, epochs, bs=64):
    lf = nn.CrossEntropyLoss(); out = []
    for s in seeds:
        torch.manual_seed(s); m = mlp(40, hidden); opt = torch.optim.Adam(m.parameters(), 1e-3); g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x) - bs + 1, bs):
                j = perm[i:i+bs]; lf(m(x[j]), y[j]).backward(); opt.step(); opt.zero_grad()
        out.append(m)
    return out

def _train_vmap(x, y, seeds, hidden, epochs, bs=64):
    from torch.func import stack_module_state, functional_call
    ms = []
    for s in seeds: torch.manual_seed(s); ms.append(mlp(40, hidden))
    params, _ = stack_module_state(ms); base = copy.deepcopy(ms[0]).to('meta')
    names, ps = list(params), [nn.Parameter(p.detach()) for p in params.values()]
    opt = torch.optim.Adam(ps, 1e-3); g = torch.Generator().manual_seed(0); lf = nn.CrossEntropyLoss(); S = len(ms)
    fwd = torch.vmap(lambda p, xb: functional_call(base, dict(zip(names, p)), (xb,)), in_dims=(0, None))
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - bs + 1, bs):
            j = perm[i:i+bs]; out = fwd(ps, x[j])
            (lf(out.reshape(-1, out.shape[-1]), y[j].repeat(S)) * S).backward(); opt.step(); opt.zero_grad()
    return dict(zip(names, ps))

def batched_seeds(a):
    "Seeds one after another against one batched model: epochs, the largest weight difference, and the table's rows"
    dls = mnist1d_dls(seed=0); x, y = dls.train.dataset.x, dls.train.dataset.y
    if a.smoke: x, y = x[:256], y[:256]
    epochs = 1 if (a.smoke or a.quick) else 3
    # the batched model is the same computation: after an epoch, each seed's weights match its own sequential run
    seq = _train_seq(x[:640], y[:640], [0, 1, 2], (300, 100), 1); bat = _train_vmap(x[:640], y[:640], [0, 1, 2], (300, 100), 1)
    err = max(float((dict(m.named_parameters())[k] - v[i]).abs().max()) for i, m in enumerate(seq) for k, v in bat.items())
    rows = []
    for hidden in [(300, 100)] if (a.quick or a.smoke) else [(300, 100), (256, 512, 512)]:
        for S in ([3] if (a.quick or a.smoke) else [3, 8]):
            seeds = list(range(S))
            t = interleave({'seq': lambda: timed(_train_seq, x, y, seeds, hidden, epochs),
                            'vmap': lambda: timed(_train_vmap, x, y, seeds, hidden, epochs)}, 1 if a.smoke else 3)
            r = boot_median(np.array(t['seq']) / np.array(t['vmap']))
            rows.append([f"40-{'-'.join(map(str, hidden))}-10", S, f"{statistics.median(t['seq']):.2f}",
                         f"{statistics.median(t['vmap']):.2f}", f'{r[0]:.2f}x'])
    return epochs, err, rows

def run(a):
    "The command's split, the loops, the batched seeds: the section's markdown and its results"
    torch.set_num_threads(a.default_threads); argv, total, phases = ticket_split(a)
    torch.set_num_threads(a.threads)
    named = sum(phases.values()); phases = dict(sorted(phases.items(), key=lambda kv: -kv[1]))
    phases['other (data, models, copies, tables, plots)'] = total - named
    srows = [[k, f'{v:.1f}', f'{100*v/total:.0f}%'] for k, v in phases.items()] + [['total', f'{total:.1f}', '100%']]
    epochs, loops = loop_compare(a)
    lrows = [[k, f'{m:.3f}', fmt_ci(r, 2)] for k, (m, r) in loops.items()]
    be, err, brows = batched_seeds(a)
    cmd = 'lottery_nb ' + ' '.join(argv)
    txt = ['## 4. Time to a ticket', '',
           f'`{cmd}` run in this process, its time split by wrapping the functions of each phase (exclusive times: '
           'pruning inside a training epoch counts as pruning).', '',
           md_table(['phase', 'seconds', 'share'], srows), '',
           f'The training loop alone: the MNIST-1D MLP, Adam, {epochs} epochs (62 batches of 64 and a validation pass '
           'each), against a plain PyTorch loop over the same tensors. Each fastai row adds one setting to the row '
           f'above it, except the last two, which each add one to the lottery_nb default. Ratio to the plain loop, '
           'median [bootstrap 95% interval].', '',
           md_table(['loop', 'median (s)', 'ratio to plain PyTorch'], lrows), '',
           f'Seeds trained together as one batched model (`torch.func.stack_module_state` + `vmap`, one Adam over the '
           f'stacked weights) against the same seeds one after another, both plain PyTorch, {be} epoch(s) of MNIST-1D. '
           f'After an epoch each seed\'s batched weights match its own sequential run to {err:.1e}.', '',
           md_table(['MLP', 'seeds', 'one after another (s)', 'batched (s)', 'speed-up'], brows)]
    return '\n'.join(txt), dict(total=total, phases=phases, loops=loops, batched=brows, cmd=cmd)

def summary(r):
    "The summary's rows: the time to a ticket and the fastai loop's cost"
    tr = r['phases'].get('training', 0)
    fast = r['loops']['+ fast_events (lottery_nb default)'][1][0]; stock = r['loops']['fastai, stock DataLoader'][1][0]
    return [[f'time to a ticket (`{r["cmd"]}`)', f"{r['total']:.0f} s, training {100*tr/r['total']:.0f}%", '-'],
            ['fastai loop / plain PyTorch loop (MNIST-1D MLP)', f'stock {stock:.2f}x, lottery_nb default {fast:.2f}x', '-']]
