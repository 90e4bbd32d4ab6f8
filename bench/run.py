"""lottery_nb's benchmark suite: what masks, pruning and the search for a ticket cost, beside the alternatives.

    python bench/run.py            # the full suite (about 20 minutes on 2 CPU cores)
    python bench/run.py --quick    # a smaller setting of every section (under 2 minutes)

It prints a summary table, then one table per section, and writes them all to bench/README.md with the command,
the machine and the date (`--no-write` only prints). Sections (`--only 1,3` runs some):

1. Training overhead: plain fastai against a bare-mask floor, lottery_nb's `SparsifyCallback` holding a fixed
   mask, lottery_nb pruning with `reset='lth'`, `torch.nn.utils.prune` and fasterai 0.4.1, on three models and
   three optimizers. Arms are interleaved in a new random order every rep, after a warm-up; each rep's times are
   divided by the first plain fit's of the same rep, and the tables give the median ratio with a bootstrap 95%
   interval. Two plain fits (A/A) show the noise; the floor is one `torch._foreach_mul_` after every step.
2. Mask computation: a global 80% magnitude prune of ResNet-18 and ResNet-50.
3. Memory: bytes held per prunable weight, and the peak RSS of a training run with and without a mask.
4. Time to a ticket: the default `lottery_nb` command split into training, pruning, resetting, evaluation and
   files; the training loop against a bare PyTorch loop and what each lean setting saves; and seeds trained
   together as one batched model (`torch.func.stack_module_state` with `vmap`).

fasterai is a peer, never a dependency: the script installs it into bench/.peers with
`pip install --no-deps --target bench/.peers fasterai==0.4.1 einops torch-pruning`, and skips it with a
message where that fails. No timing here is an assertion; the test suite runs `--smoke` (one tiny rep of
everything) only to check that the script works."""
import argparse, contextlib, re, copy, datetime, functools, gc, io, json, os, platform, random, shutil, statistics
import subprocess, sys, tempfile, time, warnings, zlib
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np, torch
from torch import nn
from torch.nn.utils import prune as tprune
from fastai.basics import Learner, Callback, CrossEntropyLossFlat, Adam, SGD, OptimWrapper, CastToTensor, accuracy
from fastai.data.load import DataLoader
from fastai.data.core import DataLoaders
import fastai.callback.progress  # noqa: F401 (no_bar)
from torchvision import models as tvm
from lottery_nb.core import mask_views, apply_views, masked_layers, get_mask, remove_masks, has_mask
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.callback import SparsifyCallback, fast_events
from lottery_nb.schedules import annealing_no, one_shot
from lottery_nb.data import mnist1d_dls, digits_dls
from lottery_nb.models import mlp, tv_resnet18 as resnet18
import lottery_nb

HERE = Path(__file__).resolve().parent
PEERS = HERE/'.peers'
PRUNED = 80   # percent pruned wherever a mask is held

# ---------------------------------------------------------------------------------------------------- statistics
def boot_median(xs, n=2000, seed=0):
    "Median of `xs` and its bootstrap 95% interval"
    a = np.asarray(xs, float); rng = np.random.default_rng(seed)
    meds = np.median(a[rng.integers(0, len(a), (n, len(a)))], axis=1)
    return float(np.median(a)), float(np.quantile(meds, .025)), float(np.quantile(meds, .975))

def fmt_ci(r):
    "A `boot_median` result as 'median [low, high]'"
    m, lo, hi = r
    return f'{m:.3f} [{lo:.3f}, {hi:.3f}]'

def fmt_ratio(xs): return fmt_ci(boot_median(xs))

def interleave(arms:dict, reps:int, seed=0):
    "Run every arm once as a warm-up, then `reps` times in a new random order each rep; `{arm: [seconds]}`"
    rng = random.Random(seed)
    for f in arms.values(): f()
    times = {k: [] for k in arms}
    for _ in range(reps):
        ks = list(arms); rng.shuffle(ks)
        for k in ks: times[k].append(arms[k]())
    return times

def md_table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    return '\n'.join(out + ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows])

# ---------------------------------------------------------------------------------------------------- peers
def load_fasterai():
    "fasterai 0.4.1 from bench/.peers (installed there on first use), or `None` with the reason"
    if not (PEERS/'fasterai').exists():
        r = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(PEERS),
                            'fasterai==0.4.1', 'einops', 'torch-pruning'], capture_output=True, text=True)
        if r.returncode: return None, f'pip could not install fasterai 0.4.1: {r.stderr.strip().splitlines()[-1:]}'
    sys.path.insert(0, str(PEERS))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from fasterai.sparse.sparsifier import Sparsifier as FSparsifier
            from fasterai.sparse.sparsify_callback import SparsifyCallback as FCallback
            from fasterai.core.criteria import large_final as f_large_final
            from fasterai.core.schedule import Schedule, sched_oneshot
        import fasterai
    except Exception as e: return None, f'fasterai 0.4.1 did not import: {type(e).__name__}: {e}'
    finally: sys.path.remove(str(PEERS))
    return dict(Sparsifier=FSparsifier, Callback=FCallback, large_final=f_large_final, Schedule=Schedule,
                sched_oneshot=sched_oneshot, version=getattr(fasterai, '__version__', '0.4.1')), None

FAI, FAI_WHY = None, None
THREADS = torch.get_num_threads()   # torch's default, for the parts that are not side-by-side comparisons

# ---------------------------------------------------------------------------------------------------- section 1
class FloorCallback(Callback):
    "The least a fastai callback can do to hold a mask: one `torch._foreach_mul_` of the weights by float masks"
    order = SparsifyCallback.order
    def __init__(self, model):
        ls = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        self.ws = [m.weight.data for m in ls]
        self.ms = [(m.weight.data != 0).float() for m in ls]
    def __call__(self, event_name):
        if event_name == 'after_step': torch._foreach_mul_(self.ws, self.ms)

class TrainTime(Callback):
    "Seconds spent in the training phase of each epoch (the same cheap callback in every arm)"
    order = -100
    def __init__(self): self.t = 0.
    def __call__(self, event_name):
        if event_name == 'before_train': self.t0 = time.perf_counter()
        elif event_name == 'after_train': self.t += time.perf_counter() - self.t0

def _prunable(m): return [(l, 'weight') for l in m.modules() if isinstance(l, (nn.Linear, nn.Conv2d))]

def premask(m):
    "Prune 80% of every layer in place (lottery_nb's local magnitude prune), masks on the model"
    Sparsifier(m).prune(PRUNED); return m

OPTS = {'Adam': (Adam, 1e-3, dict(wd=0.)),   # fastai's Adam decays weights by 0.01 unless told not to
        'AdamW wd=0.01': (Adam, 1e-3, dict(wd=0.01, decouple_wd=True)),
        'SGD mom=0.9': (SGD, 1e-2, dict(mom=0.9))}

def limit(dls, n_train, n_valid):
    "The same loaders cut to their first `n_train` / `n_valid` samples (the training ones still shuffled)"
    return DataLoaders(*[type(dl)(dl.dataset, bs=dl.bs, shuffle=dl.shuffle, drop_last=dl.drop_last, n=min(n, len(dl.dataset)))
                         for dl, n in zip(dls.loaders[:2], (n_train, n_valid))], device='cpu')

def models_for(quick, smoke=False):
    "`{name: (model_fn, dls_fn, epochs)}`: the three models of section 1"
    if smoke: return {'MNIST-1D MLP 40-300-100-10': (lambda: mlp(40), lambda: limit(mnist1d_dls(seed=0), 128, 128), 1),
                      'ResNet-18, digits 16x16': (lambda: resnet18(), lambda: limit(digits_dls(16, seed=0), 128, 128), 1)}
    return {'MNIST-1D MLP 40-300-100-10': (lambda: mlp(40), lambda: mnist1d_dls(seed=0), 1 if quick else 3),
            'wide MLP 40-256-512-512-10': (lambda: mlp(40, (256, 512, 512)), lambda: mnist1d_dls(seed=0), 1),
            'ResNet-18, digits 16x16': (lambda: resnet18(), lambda: limit(digits_dls(16, seed=0), 128 if quick else 640, 256), 1)}

@functools.lru_cache(maxsize=1)
def _initial(model_fn, seed):
    torch.manual_seed(seed); return model_fn()

def fit_arm(arm, model_fn, dls, opt, epochs, seed=0):
    "One fit of `arm` on a copy of `model_fn()`'s model; its wall time (s) and its training-phase time (s)"
    opt_func, lr, kw = OPTS[opt]
    m = copy.deepcopy(_initial(model_fn, seed)); cbs = []
    if arm == 'bare-mask floor': remove_masks(premask(m)); cbs = [FloorCallback(m)]   # zeros kept, lottery_nb's hooks gone
    elif arm == 'lottery_nb fixed mask':
        premask(m); cbs = [SparsifyCallback(sparsity=PRUNED, sched_func=annealing_no)]
    elif arm == 'lottery_nb prune, reset=lth':
        cbs = [SparsifyCallback(sparsity=PRUNED, sched_func=one_shot, reset='lth')]
    elif arm == 'torch.nn.utils.prune':
        for l, n in _prunable(m): tprune.l1_unstructured(l, n, amount=PRUNED/100)
    elif arm == 'fasterai 0.4.1':
        cbs = [FAI['Callback'](PRUNED/100, 'weight', 'local', FAI['large_final'], FAI['Schedule'](FAI['sched_oneshot'], start_pct=0.),
                               lth=True, layer_type=(nn.Linear, nn.Conv2d))]
    tt = TrainTime()
    learn = Learner(dls, m, loss_func=CrossEntropyLossFlat(), opt_func=functools.partial(opt_func, **kw), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter(); learn.fit(epochs, lr, cbs=cbs + [tt]); t = time.perf_counter() - t0
    if arm == 'bare-mask floor': assert not any(has_mask(l) or l._forward_pre_hooks for l, _ in _prunable(m))
    if arm in ('lottery_nb fixed mask', 'lottery_nb prune, reset=lth', 'bare-mask floor'):
        assert abs(sum(int((l.weight == 0).sum()) for l, _ in _prunable(m)) / sum(l.weight.numel() for l, _ in _prunable(m)) - PRUNED/100) < .01
    return t, tt.t

ARMS = ['plain A', 'plain B (A/A)', 'bare-mask floor', 'lottery_nb fixed mask', 'lottery_nb prune, reset=lth',
        'torch.nn.utils.prune', 'fasterai 0.4.1']

def mask_op_time(model_fn, n=200):
    "Median seconds of lottery_nb's per-step mask multiply (`apply_views`) on the pruned model"
    torch.manual_seed(0); m = premask(model_fn()); views = mask_views(masked_layers(m).values())
    for _ in range(10): apply_views(views)
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); apply_views(views); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def at_floor(r):
    "The goal: the interval includes 1, or the median is within 1% of it, or the whole interval is below it"
    m, lo, hi = r
    return lo <= 1 <= hi or abs(m - 1) <= .01 or hi < 1

def section_overhead(a):
    torch.set_num_threads(a.threads)
    arms = [k for k in ARMS if k != 'fasterai 0.4.1' or FAI is not None]
    opts = list(OPTS) if not (a.quick or a.smoke) else ['Adam']
    reps = a.reps or (4 if a.quick else 11)
    rows, summary, res = [], [], {}
    for mname, (model_fn, dls_fn, epochs) in models_for(a.quick, a.smoke).items():
        dls = dls_fn(); _initial.cache_clear()
        op = mask_op_time(model_fn, 20 if a.smoke else 200)
        for opt in opts:
            out = {}
            def runner(k): return lambda: out.setdefault(k, []).append(fit_arm(k, model_fn, dls, opt, epochs))
            interleave({k: runner(k) for k in arms}, reps, seed=zlib.crc32(f"{mname}{opt}".encode()))
            for k in out: out[k] = out[k][1:]   # drop the warm-up
            t = {k: np.array([o[0] for o in v]) for k, v in out.items()}
            base = t['plain A']; n_steps = epochs * len(dls.train)
            step = statistics.median(o[1] for o in out['plain A']) / n_steps
            ratio = {k: t[k] / base for k in t}
            tr = {k: np.array([o[1] for o in v]) for k, v in out.items()}   # the training phase: the steps alone
            vs_floor = t['lottery_nb fixed mask'] / t['bare-mask floor']
            vs_floor_tr = tr['lottery_nb fixed mask'] / tr['bare-mask floor']
            peers = [p for p in ('torch.nn.utils.prune', 'fasterai 0.4.1') if p in t]
            below = {p: boot_median(t['lottery_nb fixed mask'] / t[p]) for p in peers}
            res[(mname, opt)] = dict(ratio={k: boot_median(v) for k, v in ratio.items()}, vs_floor=boot_median(vs_floor),
                                     vs_floor_tr=boot_median(vs_floor_tr), vs_peer=below,
                                     step_ms=1e3*step, op_ms=1e3*op, share=op/step)
            for k in arms:
                rows.append([mname, opt, k, f'{np.median(t[k]):.3f}', fmt_ratio(ratio[k])])
            lo_f, lo_t = boot_median(vs_floor), boot_median(vs_floor_tr)
            summary.append([mname, opt, f'{1e3*step:.2f}', f'{1e3*op:.3f} ({100*op/step:.1f}%)', fmt_ratio(ratio['plain B (A/A)']),
                            fmt_ci(lo_f), 'yes' if at_floor(lo_f) else 'no', fmt_ci(lo_t), 'yes' if at_floor(lo_t) else 'no',
                            ', '.join(f'{p.split()[0]} {fmt_ci(v)}' for p, v in below.items())])
    txt = ['## 1. Training overhead', '',
           f'Whole `learn.fit` wall time, {reps} reps after a warm-up, the arms in a new random order every rep. Ratios are '
           f'to the first plain fit of the same rep: median [bootstrap 95% interval]. {PRUNED}% of every Linear/Conv2d weight '
           f'is masked in the floor, lottery_nb fixed, and torch arms (local magnitude, pruned before the fit); the pruning arms '
           f'(lottery_nb with `one_shot` and `reset=\'lth\'`, fasterai with its one-shot schedule at 0 and `lth=True`) prune '
           f'to {PRUNED}% at the first batch and rewind to the initial weights. Every Learner is plain fastai '
           f'(no `fast_events`), so only the mask differs. The MLPs train on all {len(mnist1d_dls(seed=0).train.dataset):,} MNIST-1D training vectors, ResNet-18 '
           f'on the first {128 if a.quick else 640} training digits (one epoch, validation on 256).' + ('' if FAI is not None else f' fasterai skipped: {FAI_WHY}'), '',
           '**Summary**: step = median training time per batch of the plain fit; mask op = one `apply_views` (the multiply '
           'lottery_nb does after every step), alone, and its share of the step; A/A = plain B / plain A; '
           'vs floor = lottery_nb fixed / floor, paired per rep, for the whole fit and for its training phase alone (the steps, '
           'without the set-up in `before_fit`: the callback\'s rewind snapshot and sparsity count); at the floor = its interval '
           'includes 1, its median is within 1%, or it is below 1; vs peers = lottery_nb fixed / peer, whole fit (below 1 is faster).', '',
           md_table(['model', 'optimizer', 'step (ms)', 'mask op (ms, share)', 'A/A', 'lottery_nb fixed / floor, fit',
                     'at the floor?', 'the same, steps only', 'at the floor?', 'lottery_nb fixed / peer'], summary), '',
           '<details><summary>Every arm</summary>', '',
           md_table(['model', 'optimizer', 'arm', 'median fit (s)', 'ratio to plain A'], rows), '', '</details>']
    return '\n'.join(txt), res

# ---------------------------------------------------------------------------------------------------- section 2
def section_prune(a):
    torch.set_num_threads(THREADS)
    reps = 1 if a.smoke else (3 if a.quick else 5)
    names = ['resnet18'] if (a.quick or a.smoke) else ['resnet18', 'resnet50']
    rows, res = [], {}
    for name in names:
        torch.manual_seed(0); base = getattr(tvm, name)()
        n = sum(l.weight.numel() for l, _ in _prunable(base))
        def ours():
            m = copy.deepcopy(base); sp = Sparsifier(m, method='global')
            t0 = time.perf_counter(); sp.prune(PRUNED); return time.perf_counter() - t0
        def torch_global():
            m = copy.deepcopy(base); t0 = time.perf_counter()
            tprune.global_unstructured(_prunable(m), pruning_method=tprune.L1Unstructured, amount=PRUNED/100)
            return time.perf_counter() - t0
        def fai():
            m = copy.deepcopy(base)
            sp = FAI['Sparsifier'](m, 'weight', 'global', FAI['large_final'], layer_type=(nn.Linear, nn.Conv2d))
            t0 = time.perf_counter(); sp.sparsify_model(PRUNED/100); return time.perf_counter() - t0
        arms = {'lottery_nb Sparsifier.prune': ours, 'torch global_unstructured': torch_global}
        if FAI is not None: arms['fasterai sparsify_model'] = fai
        with contextlib.redirect_stdout(io.StringIO()): t = interleave(arms, reps)
        best = {k: min(v) for k, v in t.items()}
        for k in arms:
            rows.append([f'{name} ({n/1e6:.1f}M weights)', k, f'{statistics.median(t[k]):.3f}', f'{best[k]:.3f}',
                         f"{best[k]/best['lottery_nb Sparsifier.prune']:.1f}x"])
        res[name] = best
        del base; gc.collect()
    txt = ['## 2. Mask computation', '',
           f'A global {PRUNED}% magnitude prune of all Conv2d and Linear weights of torchvision models, {reps} reps '
           '(interleaved, after a warm-up); the prune call only, on a fresh copy of the model each time. fasterai ranks '
           'globally the same way (`context=\'global\'`).', '',
           md_table(['model', 'library', 'median (s)', 'best (s)', 'best / lottery_nb'], rows)]
    return '\n'.join(txt), res

# ---------------------------------------------------------------------------------------------------- section 3
def _storages(*objs):
    "`{storage pointer: bytes}` of every tensor reachable from the objects, modules' attributes included"
    seen = {}
    def visit(o):
        if isinstance(o, torch.Tensor): s = o.untyped_storage(); seen[s.data_ptr()] = s.nbytes()
        elif isinstance(o, nn.Module):
            for m in o.modules():
                for v in list(m._parameters.values()) + list(m._buffers.values()) + list(vars(m).values()): visit(v)
        elif isinstance(o, dict): [visit(v) for v in o.values()]
        elif isinstance(o, (list, tuple)): [visit(v) for v in o]
    for o in objs: visit(o)
    return seen

def held_bytes(name):
    "Extra bytes per prunable weight held by each library once the model is pruned to 80% (global)"
    torch.manual_seed(0); m = getattr(tvm, name)(); n = sum(l.weight.numel() for l, _ in _prunable(m))
    def pruned(prune):
        "`prune` a copy of the model; the copy, and a function of the bytes reachable from objects that it did not hold before"
        mm = copy.deepcopy(m); before = _storages(mm); state = prune(mm)
        return mm, state, lambda *objs: sum(v for k, v in _storages(mm, *objs).items() if k not in before) / n
    res = {}
    mm, sp, extra = pruned(lambda mm: Sparsifier(mm, method='global').prune(PRUNED))
    masks = sum(get_mask(l).untyped_storage().nbytes() for l in masked_layers(mm).values()) / n
    w0 = sum(mm.get_submodule(k.rsplit('.', 1)[0]).weight.numel() * 4 for k in sp.rewind_state
             if k.endswith('.weight') and k.rsplit('.', 1)[0] in sp.layers) / n
    total = extra(sp.rewind_state)
    res['lottery_nb'] = (total, f'bool mask {masks:.3f} + float32 rewind copy of the weights {w0:.3f} '
                         f'+ rewind copy of biases, batch-norm parameters and statistics {total-masks-w0:.3f}')
    _, _, extra = pruned(lambda mm: tprune.global_unstructured(_prunable(mm), pruning_method=tprune.L1Unstructured, amount=PRUNED/100))
    res['torch.nn.utils.prune'] = (extra(), 'float32 `weight_mask` + the masked `weight` it recomputes every forward; no rewind copy')
    if FAI is not None:
        def fai(mm):
            with contextlib.redirect_stdout(io.StringIO()):
                FAI['Sparsifier'](mm, 'weight', 'global', FAI['large_final'], layer_type=(nn.Linear, nn.Conv2d)).sparsify_model(PRUNED/100)
        _, _, extra = pruned(fai)
        res['fasterai 0.4.1'] = (extra(), 'float32 `_mask` + `_init_weights`/`_init_biases` of every layer with a weight')
    return n, res

RSS_ARMS = ['plain', 'lottery_nb fixed mask', 'torch.nn.utils.prune', 'fasterai 0.4.1']

def _status(key): return int(re.search(rf'{key}:\s+(\d+)', open('/proc/self/status').read()).group(1)) / 1024

def rss_child(arm, smoke):
    "In a fresh process: one fit of ResNet-18 on digits in `arm`; print its peak RSS above the RSS before it (MiB)"
    global FAI
    if arm == 'fasterai 0.4.1': FAI, _ = load_fasterai()
    dls = digits_dls(16, seed=0)
    if smoke: dls = limit(dls, 128, 128)
    torch.set_num_threads(1)   # the arms run side by side
    gc.collect(); open('/proc/self/clear_refs', 'w').write('5')   # resets the peak (VmHWM) to the current RSS
    before = _status('VmRSS')
    fit_arm({'plain': 'plain A'}.get(arm, arm), resnet18, dls, 'Adam', 1)
    print(json.dumps(dict(before=before, peak=_status('VmHWM'))))

def section_memory(a):
    torch.set_num_threads(THREADS)
    name = 'resnet18' if (a.quick or a.smoke) else 'resnet50'
    n, res = held_bytes(name)
    rows = [[k, f'{v:.2f}', why] for k, (v, why) in res.items()]
    arms = [k for k in (RSS_ARMS if not a.smoke else RSS_ARMS[:2]) if k != 'fasterai 0.4.1' or FAI is not None]
    vals = {k: [] for k in arms}
    for _ in range(1 if (a.quick or a.smoke) else 3):   # the arms of a rep run side by side: memory, not time
        ps = {k: subprocess.Popen([sys.executable, __file__, '--rss-child', k] + (['--smoke'] if a.smoke or a.quick else []),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in arms}
        for k, p in ps.items():
            out, err = p.communicate()
            if p.returncode: raise RuntimeError(f'the RSS run of {k!r} failed:\n{err[-2000:]}')
            o = json.loads(out.strip().splitlines()[-1]); vals[k].append((o['peak'] - o['before'], o['peak']))
    rss = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs)) for k, vs in vals.items()}
    nw = sum(l.weight.numel() for l, _ in _prunable(resnet18()))
    p0 = rss['plain'][0]
    rrows = [[k, f'{v[1]:.0f}', f'{v[0]:.0f}', f"{v[0] - p0:+.0f}", f"{(v[0] - p0)*2**20/nw:+.1f}"] for k, v in rss.items()]
    txt = ['## 3. Memory', '',
           f'Extra bytes per prunable weight held once torchvision {name} ({n/1e6:.1f}M prunable weights) is pruned to {PRUNED}% '
           '(global): every tensor storage reachable from the model (parameters, buffers, module attributes) and the library\'s '
           'own state, that the unpruned model did not have.', '',
           md_table(['library', 'bytes / prunable weight', 'what they are'], rows), '',
           f'Peak RSS of one process that trains ResNet-18 ({nw/1e6:.1f}M prunable weights) on digits for an epoch with Adam '
           f'({"128 digits" if a.quick or a.smoke else "all of them"}), '
           f'median of {1 if (a.quick or a.smoke) else 3} fresh processes. The fit\'s own memory is its peak RSS above the '
           'RSS just before it (Python, torch, fastai and the data already loaded; the peak is reset there).', '',
           md_table(['arm', 'peak RSS (MiB)', 'the fit\'s own (MiB)', 'vs plain (MiB)', 'vs plain (bytes / prunable weight)'], rrows)]
    return '\n'.join(txt), dict(bytes={k: v for k, (v, _) in res.items()}, rss=rss)

# ---------------------------------------------------------------------------------------------------- section 4
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
    stock, fast, tadam, nocast = cfg
    torch.manual_seed(seed)
    opt = functools.partial(OptimWrapper, opt=functools.partial(torch.optim.Adam, eps=1e-5)) if tadam else Adam
    learn = Learner(stock_dls(dls) if stock else dls, mlp(40), loss_func=CrossEntropyLossFlat(), opt_func=opt, metrics=accuracy)
    if fast: fast_events(learn)
    if nocast: learn.remove_cb(CastToTensor)
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter(); learn.fit(epochs, 1e-3); return time.perf_counter() - t0

def loop_compare(a):
    dls = mnist1d_dls(seed=0); epochs = 1 if a.smoke else 2 if a.quick else 10
    if a.smoke: dls = limit(dls, 128, 128)
    arms = {'plain PyTorch loop': lambda: bare_loop(dls, epochs)}
    arms.update({k: functools.partial(fastai_loop, dls, epochs, cfg) for k, cfg in LOOPS.items()})
    t = interleave(arms, a.reps or (1 if a.smoke else 5 if a.quick else 11), seed=1)
    base = np.array(t['plain PyTorch loop'])
    return epochs, {k: (statistics.median(v), boot_median(np.array(v) / base)) for k, v in t.items()}

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
            t = interleave({'seq': lambda: _timed(_train_seq, x, y, seeds, hidden, epochs),
                            'vmap': lambda: _timed(_train_vmap, x, y, seeds, hidden, epochs)}, 1 if a.smoke else 3)
            r = boot_median(np.array(t['seq']) / np.array(t['vmap']))
            rows.append([f"40-{'-'.join(map(str, hidden))}-10", S, f"{statistics.median(t['seq']):.2f}",
                         f"{statistics.median(t['vmap']):.2f}", f'{r[0]:.2f}x'])
    return epochs, err, rows

def _timed(f, *args):
    t0 = time.perf_counter(); f(*args); return time.perf_counter() - t0

def section_ticket(a):
    torch.set_num_threads(THREADS); argv, total, phases = ticket_split(a)
    torch.set_num_threads(a.threads)
    named = sum(phases.values()); phases = dict(sorted(phases.items(), key=lambda kv: -kv[1]))
    phases['other (data, models, copies, tables, plots)'] = total - named
    srows = [[k, f'{v:.1f}', f'{100*v/total:.0f}%'] for k, v in phases.items()] + [['total', f'{total:.1f}', '100%']]
    epochs, loops = loop_compare(a)
    lrows = [[k, f'{m:.3f}', f'{r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}]'] for k, (m, r) in loops.items()]
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

# ---------------------------------------------------------------------------------------------------- report
def machine():
    cpu = platform.processor() or platform.machine()
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    import fastai
    return (f'{cpu}, {os.cpu_count()} cores, {gpu}; Python {platform.python_version()}, '
            f'torch {torch.__version__}, fastai {fastai.__version__}, lottery_nb {lottery_nb.__version__}'
            + (f", fasterai {FAI['version']}" if FAI else ', fasterai not available'))

def summary(res):
    rows = []
    if 1 in res:
        r = res[1]
        for key, what in (('vs_floor', 'whole fit'), ('vs_floor_tr', 'training steps only')):
            same = [k for k, v in r.items() if at_floor(v[key])]
            worst = max(r.values(), key=lambda v: v[key][0])[key]
            rows.append([f'lottery_nb fixed mask costs no more than the bare-mask floor, {what} (interval includes 1, within 1%, or below)',
                         f"{len(same)} of {len(r)} model x optimizer cells (worst median {worst[0]:.3f})", 'yes' if len(same) == len(r) else 'no'])
        for p in ('torch.nn.utils.prune', 'fasterai 0.4.1'):
            have = [v['vs_peer'][p] for v in r.values() if p in v['vs_peer']]
            if not have: continue
            below, sig = sum(m < 1 for m, _, _ in have), sum(hi < 1 for _, _, hi in have)
            rows.append([f'lottery_nb fixed mask below {p} (whole fit, paired)', f'{below} of {len(have)} cells by the median, '
                         f'{sig} with the whole interval below 1', 'yes' if below == len(have) else 'no'])
        aa = max(abs(v['ratio']['plain B (A/A)'][0] - 1) for v in r.values())
        rows.append(['A/A control (noise)', f'largest |median - 1| {aa:.3f}', '-'])
    if 2 in res:
        for name, b in res[2].items():
            lead = min(v for k, v in b.items() if not k.startswith('lottery')) / b['lottery_nb Sparsifier.prune']
            rows.append([f'global {PRUNED}% prune, {name}: lead over the fastest peer', f'{lead:.1f}x', 'yes' if lead > 1 else 'no'])
    if 3 in res:
        b = res[3]['bytes']['lottery_nb']
        rows.append(['at most 5 bytes per prunable weight', f'{b:.3f} (1 mask + 4 rewind + the rest of the rewind state)',
                     'yes' if b <= 5 else 'no (by the rewind copy of the non-prunable state)'])
    if 4 in res:
        r = res[4]; tr = r['phases'].get('training', 0)
        rows.append([f'time to a ticket (`{r["cmd"]}`)', f"{r['total']:.0f} s, training {100*tr/r['total']:.0f}%", '-'])
        fast = r['loops']['+ fast_events (lottery_nb default)'][1][0]; stock = r['loops']['fastai, stock DataLoader'][1][0]
        rows.append(['fastai loop / plain PyTorch loop (MNIST-1D MLP)', f'stock {stock:.2f}x, lottery_nb default {fast:.2f}x', '-'])
    return md_table(['goal or figure', 'measured', 'met'], rows)

def main(argv=None):
    global FAI, FAI_WHY
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='a smaller setting of every section (under 2 minutes)')
    ap.add_argument('--smoke', action='store_true', help='one tiny rep of everything, to check the script runs (the tests use it)')
    ap.add_argument('--reps', type=int, default=None, help='reps per arm (default 11; with --quick 4 in section 1, 5 in section 4)')
    ap.add_argument('--only', default='1,2,3,4', help='sections to run, e.g. 1,3')
    ap.add_argument('--no-write', action='store_true', help='print only; leave bench/README.md alone')
    ap.add_argument('--no-fasterai', action='store_true', help='leave the fasterai peer out')
    ap.add_argument('--threads', type=int, default=1, help='torch threads for the timed comparisons of sections 1 and 4 '
                    '(default 1: on 2 cores a second thread doubles the spread of a fit\'s time)')
    ap.add_argument('--rss-child', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.rss_child: return rss_child(a.rss_child, a.smoke)
    if a.smoke: a.quick, a.reps = False, 1
    secs = {1: section_overhead, 2: section_prune, 3: section_memory, 4: section_ticket}
    want = [int(s) if s.strip().isdigit() else s for s in a.only.split(',')]
    bad = [s for s in want if s not in secs]
    if bad: ap.error(f'--only takes section numbers from {sorted(secs)}, got {bad}')
    FAI, FAI_WHY = (None, '--no-fasterai') if a.no_fasterai else load_fasterai()
    if FAI is None: print(f'fasterai skipped: {FAI_WHY}', file=sys.stderr)
    t0 = time.time(); texts, res = {}, {}
    for s in want:
        t1 = time.time(); texts[s], res[s] = secs[s](a)
        print(texts[s], f'\n\n({time.time()-t1:.0f} s)\n', flush=True)
    cmd = 'python bench/run.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    head = ['# Benchmarks', '', f'`{cmd.strip()}`, {datetime.date.today().isoformat()}, {time.time()-t0:.0f} s in all.', '',
            f'Machine: {machine()}. Timed comparisons (sections 1 and 4, except the command\'s split) ran on {a.threads} torch '
            f'thread(s), the rest on torch\'s default {THREADS}.', '', '## Summary', '', summary(res), '']
    doc = '\n'.join(head + [texts[s] + '\n' for s in want])
    print('\n'.join(head))
    if not a.no_write and not a.smoke: (HERE/'README.md').write_text(doc + '\n' + NOTES)
    return res

NOTES = """## How to read these tables

- A ratio's interval comes from resampling the reps (2,000 bootstrap draws of the median). Where the A/A interval
  is wide, so is every other: that is this machine's noise, not the arm's cost.
- The mask op column is the arithmetic cost of masking; anything an arm spends beyond plain + mask op is
  bookkeeping: fastai's callback dispatch, hooks, or a Python loop over the layers.
- Section 4's split wraps functions, so time in code it does not name (building data, models, copying states,
  tables and plots) is "other".
"""

if __name__ == '__main__': main()
