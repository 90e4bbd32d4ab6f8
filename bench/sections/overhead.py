"""1. Training overhead: plain fastai against a bare-mask floor, lottery_nb's `SparsifyCallback` holding a fixed mask,
lottery_nb pruning with `reset='lth'`, `torch.nn.utils.prune` and fasterai 0.4.1, on three models and three
optimizers. Arms are interleaved in a new random order every rep, after a warm-up; each rep's times are divided by
the first plain fit's of the same rep, and the tables give the median ratio with a bootstrap 95% interval. Two plain
fits (A/A) show the noise; the floor is one `torch._foreach_mul_` after every step."""
import functools, statistics, time, zlib
import numpy as np, torch
from lottery_nb.core import mask_views, apply_views, masked_layers
from lottery_nb.data import mnist1d_dls, digits_dls
from lottery_nb.models import mlp, tv_resnet18 as resnet18
from ..fits import PRUNED, OPTS, premask, limit, initial, fit_arm
from ..timing import interleave, with_aa, boot_median, paired, fmt_ci, md_table

ARMS = ['plain A', 'bare-mask floor', 'lottery_nb fixed mask', 'lottery_nb prune, reset=lth', 'torch.nn.utils.prune', 'fasterai 0.4.1']
AA = 'plain B (A/A)'   # the A/A control: a second plain fit

def models_for(quick, smoke=False):
    "`{name: (model_fn, dls_fn, epochs)}`: the three models of section 1"
    if smoke: return {'MNIST-1D MLP 40-300-100-10': (lambda: mlp(40), lambda: limit(mnist1d_dls(seed=0), 128, 128), 1),
                      'ResNet-18, digits 16x16': (lambda: resnet18(), lambda: limit(digits_dls(16, seed=0), 128, 128), 1)}
    return {'MNIST-1D MLP 40-300-100-10': (lambda: mlp(40), lambda: mnist1d_dls(seed=0), 1 if quick else 3),
            'wide MLP 40-256-512-512-10': (lambda: mlp(40, (256, 512, 512)), lambda: mnist1d_dls(seed=0), 1),
            'ResNet-18, digits 16x16': (lambda: resnet18(), lambda: limit(digits_dls(16, seed=0), 128 if quick else 640, 256), 1)}

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

def run(a):
    "Every arm's fits, interleaved, per model and optimizer: the section's markdown and its results"
    torch.set_num_threads(a.threads)
    opts = list(OPTS) if not (a.quick or a.smoke) else ['Adam']
    reps = a.reps or (4 if a.quick else 11)
    rows, summary, res = [], [], {}
    for mname, (model_fn, dls_fn, epochs) in models_for(a.quick, a.smoke).items():
        dls = dls_fn(); initial.cache_clear()
        op = mask_op_time(model_fn, 20 if a.smoke else 200)
        for opt in opts:
            fits = {k: functools.partial(fit_arm, k, model_fn, dls, opt, epochs, a.fai) for k in ARMS if k != 'fasterai 0.4.1' or a.fai}
            out = interleave(with_aa(fits, 'plain A', AA), reps, seed=zlib.crc32(f"{mname}{opt}".encode()),
                             warmup=not a.smoke)   # --smoke checks that the code runs: one fit an arm
            t = {k: np.array([o[0] for o in v]) for k, v in out.items()}
            n_steps = epochs * len(dls.train)
            step = statistics.median(o[1] for o in out['plain A']) / n_steps
            ratio = paired(t, 'plain A')
            tr = {k: np.array([o[1] for o in v]) for k, v in out.items()}   # the training phase: the steps alone
            vs_floor = boot_median(t['lottery_nb fixed mask'] / t['bare-mask floor'])
            vs_floor_tr = boot_median(tr['lottery_nb fixed mask'] / tr['bare-mask floor'])
            peers = [p for p in ('torch.nn.utils.prune', 'fasterai 0.4.1') if p in t]
            below = {p: boot_median(t['lottery_nb fixed mask'] / t[p]) for p in peers}
            res[(mname, opt)] = dict(ratio=ratio, vs_floor=vs_floor, vs_floor_tr=vs_floor_tr, vs_peer=below,
                                     step_ms=1e3*step, op_ms=1e3*op, share=op/step)
            for k in out: rows.append([mname, opt, k, f'{np.median(t[k]):.3f}', fmt_ci(ratio[k])])
            summary.append([mname, opt, f'{1e3*step:.2f}', f'{1e3*op:.3f} ({100*op/step:.1f}%)', fmt_ci(ratio[AA]),
                            fmt_ci(vs_floor), 'yes' if at_floor(vs_floor) else 'no', fmt_ci(vs_floor_tr), 'yes' if at_floor(vs_floor_tr) else 'no',
                            ', '.join(f'{p.split()[0]} {fmt_ci(v)}' for p, v in below.items())])
    txt = ['## 1. Training overhead', '',
           f'Whole `learn.fit` wall time, {reps} reps{"" if a.smoke else " after a warm-up"}, the arms in a new random order every rep. Ratios are '
           f'to the first plain fit of the same rep: median [bootstrap 95% interval]. {PRUNED}% of every Linear/Conv2d weight '
           f'is masked in the floor, lottery_nb fixed, and torch arms (local magnitude, pruned before the fit); the pruning arms '
           f'(lottery_nb with `one_shot` and `reset=\'lth\'`, fasterai with its one-shot schedule at 0 and `lth=True`) prune '
           f'to {PRUNED}% at the first batch and rewind to the initial weights. Every Learner is plain fastai '
           f'(no `fast_events`), so only the mask differs. The MLPs train on all {len(mnist1d_dls(seed=0).train.dataset):,} MNIST-1D training vectors, ResNet-18 '
           f'on the first {128 if a.quick else 640} training digits (one epoch, validation on 256).' + ('' if a.fai is not None else f' fasterai skipped: {a.fai_why}'), '',
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

def summary(r):
    "The summary's rows: lottery_nb at the floor, below its peers, and the A/A noise"
    rows = []
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
    aa = max(abs(v['ratio'][AA][0] - 1) for v in r.values())
    rows.append(['A/A control (noise)', f'largest |median - 1| {aa:.3f}', '-'])
    return rows
