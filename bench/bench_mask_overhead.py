"""What does holding a fixed mask cost during training? Side by side, in one run, on the same data and MLP:

- dense:        a plain fastai fit;
- empty cb:     the same fit plus a callback that does nothing (what fastai charges for any extra callback);
- lottery_nb:   80% of the weights pruned, `SparsifyCallback(sched_func=annealing_no)` holding the mask;
- torch prune:  80% pruned by `torch.nn.utils.prune.l1_unstructured` (weight_orig, weight_mask and a forward
                pre-hook on each layer), plain fit.

Arms are interleaved and repeated; the script prints median and best times, with their ratios to dense.
Run: python bench/bench_mask_overhead.py [--reps 9] [--epochs 10] [--inputs 40]
--inputs 40 is MNIST-1D's 40-300-100-10 MLP; --inputs 784 is LeNet-300-100 on MNIST-sized inputs."""
import argparse, statistics, time, warnings
warnings.filterwarnings('ignore')
import torch
from torch import nn
from torch.nn.utils import prune as tprune
from fastai.basics import *
from fastai.callback.progress import *
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.callback import SparsifyCallback
from lottery_nb.schedules import annealing_no
from lottery_nb.models import mlp

def dls(n_in, n=4000, bs=64):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, n_in, generator=g), torch.randint(0, 10, (n,), generator=g)
    ds = list(zip(x, y)); cut = int(0.8 * n)
    return DataLoaders(DataLoader(ds[:cut], bs=bs, shuffle=True, drop_last=True), DataLoader(ds[cut:], bs=bs))

def model(n_in): torch.manual_seed(0); return mlp(n_in)

class EmptyCallback(Callback): order = SparsifyCallback.order

def run(arm, data, epochs, n_in):
    m = model(n_in); cbs = []
    if arm == 'empty cb': cbs = [EmptyCallback()]
    if arm == 'lottery_nb':
        Sparsifier(m).prune(80); cbs = [SparsifyCallback(sparsity=80, sched_func=annealing_no)]
    elif arm == 'torch prune':
        for l in m:
            if isinstance(l, nn.Linear): tprune.l1_unstructured(l, 'weight', amount=0.8)
    learn = Learner(data, m, loss_func=CrossEntropyLossFlat(), opt_func=Adam)
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter(); learn.fit(epochs, 1e-3, cbs=cbs); return time.perf_counter() - t0

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=9); ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--inputs', type=int, default=40)
    a = ap.parse_args(); data = dls(a.inputs); arms = ['dense', 'empty cb', 'lottery_nb', 'torch prune']
    times = {k: [] for k in arms}
    run('dense', data, 1, a.inputs)   # warm-up
    for _ in range(a.reps):
        for k in arms: times[k].append(run(k, data, a.epochs, a.inputs))
    med, best = {k: statistics.median(v) for k, v in times.items()}, {k: min(v) for k, v in times.items()}
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, MLP {a.inputs}-300-100-10, '
          f'{a.epochs} epochs x {len(data.train)} batches of 64, {a.reps} reps')
    for k in arms:
        print(f"{k:12s} median {med[k]:.3f} s ({med[k]/med['dense']:.3f}x)   best {best[k]:.3f} s ({best[k]/best['dense']:.3f}x)")
    print(f"lottery_nb over empty cb (the mask mechanism alone): median {med['lottery_nb']/med['empty cb']:.3f}x")
