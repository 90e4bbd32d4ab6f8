"""Global magnitude prune of torchvision's resnet50 (conv + linear weights, 25.5M) to 80%, side by side:
lottery_nb's `Sparsifier.prune` against `torch.nn.utils.prune.global_unstructured` on the same weights.

Run: python bench/bench_global_prune.py [--reps 3]
Prints the best time of each over `reps` runs, interleaved, and their ratio."""
import argparse, copy, time
import torch
from torch import nn
from torch.nn.utils import prune as tprune
from torchvision import models
from lottery_nb.sparsifier import Sparsifier, bottom_k

def ours(m):
    sp = Sparsifier(m, method='global')
    t0 = time.perf_counter(); sp.prune(80); return time.perf_counter() - t0

def torch_prune(m):
    params = [(l, 'weight') for l in m.modules() if isinstance(l, (nn.Conv2d, nn.Linear))]
    t0 = time.perf_counter()
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=0.8)
    return time.perf_counter() - t0

def kthvalue_only(m):
    s = torch.cat([l.weight.detach().abs().flatten() for l in m.modules() if isinstance(l, (nn.Conv2d, nn.Linear))])
    t0 = time.perf_counter(); s.kthvalue(round(0.8 * s.numel())); return time.perf_counter() - t0

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--reps', type=int, default=3); a = ap.parse_args()
    torch.manual_seed(0); base = models.resnet50()
    n = sum(l.weight.numel() for l in base.modules() if isinstance(l, (nn.Conv2d, nn.Linear)))
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, {n/1e6:.1f}M prunable weights, target 80%')
    res = {'lottery_nb Sparsifier.prune': [], 'torch global_unstructured': [], 'one kthvalue (reference)': []}
    for _ in range(a.reps):
        res['lottery_nb Sparsifier.prune'].append(ours(copy.deepcopy(base)))
        res['torch global_unstructured'].append(torch_prune(copy.deepcopy(base)))
        res['one kthvalue (reference)'].append(kthvalue_only(base))
    best = {k: min(v) for k, v in res.items()}
    for k, v in best.items(): print(f'{k:30s} {v:7.3f} s')
    print(f"ratio torch / lottery_nb: {best['torch global_unstructured'] / best['lottery_nb Sparsifier.prune']:.1f}x")
