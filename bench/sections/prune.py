"""2. Mask computation: a global 80% magnitude prune of ResNet-18 and ResNet-50, by lottery_nb, torch and fasterai."""
import contextlib, copy, gc, io, statistics
import torch
from torchvision import models as tvm
from lottery_nb.sparsifier import Sparsifier
from ..fits import PRUNED, prunable, torch_global, fai_global
from ..timing import interleave, timed, md_table

def prunes(base, fai):
    "`{library: f}`: each `f` prunes a fresh copy of `base` and returns the seconds of the prune call alone"
    def ours(): sp = Sparsifier(copy.deepcopy(base), method='global'); return timed(sp.prune, PRUNED)
    def theirs(): sp = fai_global(fai, copy.deepcopy(base)); return timed(sp.sparsify_model, PRUNED/100)
    arms = {'lottery_nb Sparsifier.prune': ours, 'torch global_unstructured': lambda: timed(torch_global, copy.deepcopy(base))}
    if fai is not None: arms['fasterai sparsify_model'] = theirs
    return arms

def run(a):
    "The prune call alone, on a fresh copy of each model, interleaved: the section's markdown and the best times"
    torch.set_num_threads(a.default_threads)
    reps = 1 if a.smoke else (3 if a.quick else 5)
    names = ['resnet18'] if (a.quick or a.smoke) else ['resnet18', 'resnet50']
    rows, res = [], {}
    for name in names:
        torch.manual_seed(0); base = getattr(tvm, name)()
        n = sum(l.weight.numel() for l, _ in prunable(base))
        arms = prunes(base, a.fai)
        with contextlib.redirect_stdout(io.StringIO()): t = interleave(arms, reps, warmup=not a.smoke)
        best = {k: min(v) for k, v in t.items()}
        for k in arms:
            rows.append([f'{name} ({n/1e6:.1f}M weights)', k, f'{statistics.median(t[k]):.3f}', f'{best[k]:.3f}',
                         f"{best[k]/best['lottery_nb Sparsifier.prune']:.1f}x"])
        res[name] = best
        del base, arms; gc.collect()
    txt = ['## 2. Mask computation', '',
           f'A global {PRUNED}% magnitude prune of all Conv2d and Linear weights of torchvision models, {reps} reps '
           f'(interleaved{"" if a.smoke else ", after a warm-up"}); the prune call only, on a fresh copy of the model each time. fasterai ranks '
           'globally the same way (`context=\'global\'`).', '',
           md_table(['model', 'library', 'median (s)', 'best (s)', 'best / lottery_nb'], rows)]
    return '\n'.join(txt), res

def summary(res):
    "The summary's rows: lottery_nb's lead over the fastest peer"
    rows = []
    for name, b in res.items():
        lead = min(v for k, v in b.items() if not k.startswith('lottery')) / b['lottery_nb Sparsifier.prune']
        rows.append([f'global {PRUNED}% prune, {name}: lead over the fastest peer', f'{lead:.1f}x', 'yes' if lead > 1 else 'no'])
    return rows
