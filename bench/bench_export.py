"""Will a ticket be faster? CPU inference latency, side by side in one run (see nbs/12_export.ipynb, 'Will my ticket be faster?').

1. Filter tickets of torchvision's ResNet-18 (10 classes, 64x64 inputs), 30%, 50% and 70% of each conv's filters pruned
   (`Sparsifier(granularity='filter')`, L1 norm of the filters, local), timed at batch 1 and batch 64 in four forms:
   - dense:     the unpruned network (and "dense A/A", the same model timed again: the noise floor);
   - masked:    the ticket as lottery_nb holds it, masks applied by a forward pre-hook;
   - zeros:     the ticket with the masks removed, its pruned weights zero in dense tensors;
   - exported:  `export_pruned(ticket)`: the dead filters physically removed.
   Parameters and MACs (counted by Torch-Pruning) for each.
2. Unstructured sparsity: a Linear(2048, 2048) at batch 64, as a dense matmul and as torch.sparse CSR, at 50, 80, 90,
   95 and 98% of its weights zero; and torch's 2:4 semi-structured layout where this machine offers it.

Method: warm up, then every rep times each arm once in a freshly shuffled order; medians and interquartile ranges over
the reps; ratios are dense median / arm median (above 1 is faster). Threads: torch's default for this machine.
Writes bench/export.json (read by the docs page) and prints the tables.
Run: python bench/bench_export.py [--reps 11] [--quick]"""
import argparse, json, platform, statistics, sys, time, warnings
from copy import deepcopy
from datetime import date
from pathlib import Path
warnings.filterwarnings('ignore')
if __package__ in (None, ''): sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script
import torch
from lottery_nb.core import remove_masks
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.models import tv_resnet18 as resnet18
from lottery_nb.export import export_pruned, silence_dead_channels, n_params
from bench.timing import interleave, with_aa, timed

def side_by_side(arms, reps, inner):
    "{arm: [seconds per call, one per rep]}: warm-up, then every rep runs each arm once, in a shuffled order"
    return interleave({k: (lambda f=f: timed(f, n=inner)) for k, f in arms.items()}, reps)

def stats(ts):
    q = statistics.quantiles(ts, n=4)
    return dict(median=statistics.median(ts), q1=q[0], q3=q[2])

def macs(m, x):
    import torch_pruning as tp
    return tp.utils.count_ops_and_params(m, x)[0]

def filter_tickets(pcts, batches, reps, size=64):
    torch.manual_seed(0)
    dense = resnet18().eval()
    rows = []
    for pct in pcts:
        ticket = deepcopy(dense)
        Sparsifier(ticket, granularity='filter').prune(pct)
        x1 = torch.randn(1, 3, size, size)
        silence_dead_channels(ticket, x1)
        exported = export_pruned(ticket, x1, verbose=False).eval()
        zeros = remove_masks(deepcopy(ticket))
        ticket.eval(); zeros.eval()
        for bs in batches:
            x = torch.randn(bs, 3, size, size)
            forms = with_aa({'dense': dense, 'masked': ticket, 'zeros': zeros, 'exported': exported}, 'dense')   # + 'dense A/A'
            with torch.inference_mode():
                ts = side_by_side({k: (lambda m=m: m(x)) for k,m in forms.items()}, reps, inner=max(1, 16 // bs))
            for k, m in forms.items():
                rows.append(dict(pct=pct, batch=bs, form=k, params=n_params(m), macs=macs(m, x1), **stats(ts[k])))
            d = statistics.median(ts['dense'])
            print(f"filters pruned {pct}%, batch {bs}: " + ', '.join(
                f"{k} {1e3*statistics.median(v):.2f} ms ({d/statistics.median(v):.2f}x)" for k,v in ts.items()), flush=True)
    return rows

def csr(sparsities, reps, n=2048, bs=64):
    torch.manual_seed(0)
    rows, x = [], torch.randn(n, bs)
    w = torch.randn(n, n)
    semi = None
    try:
        from torch.sparse import to_sparse_semi_structured
        to_sparse_semi_structured(torch.randn(64, 64).half() * (torch.arange(64) % 4 < 2))
    except Exception as e: semi = f'{type(e).__name__}: {str(e).splitlines()[0][:120]}'
    for s in sparsities:
        k = int(round(n * n * s / 100))
        wz = w.clone().flatten(); wz[torch.randperm(n * n)[:k]] = 0; wz = wz.view(n, n)
        wc = wz.to_sparse_csr()
        with torch.inference_mode():
            ts = side_by_side(with_aa({'dense': lambda: wz @ x, 'csr': lambda: wc @ x}, 'dense'), reps, inner=4)
        for k2, v in ts.items(): rows.append(dict(sparsity=s, form=k2, **stats(v)))
        print(f"Linear {n}x{n}, batch {bs}, {s}% zero: " + ', '.join(
            f"{k2} {1e3*statistics.median(v):.2f} ms ({statistics.median(ts['dense'])/statistics.median(v):.2f}x)"
            for k2,v in ts.items()), flush=True)
    return rows, semi

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=11); ap.add_argument('--quick', action='store_true')
    a = ap.parse_args()
    reps = 3 if a.quick else a.reps
    t0 = time.time()
    f = filter_tickets([50] if a.quick else [30, 50, 70], [1, 64], reps)
    c, semi = csr([50, 90, 98] if a.quick else [50, 80, 90, 95, 98], reps)
    res = dict(command=f"python bench/bench_export.py{' --quick' if a.quick else ''} --reps {reps}",
               machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
               date=str(date.today()), filters=f, csr=c, semi_structured=semi or 'available')
    if not a.quick: Path(__file__).with_name('export.json').write_text(json.dumps(res, indent=1) + '\n')
    print(f"semi-structured 2:4 on this machine: {res['semi_structured']}")
    print(f"done in {time.time()-t0:.0f} s" + ('' if a.quick else '; wrote bench/export.json'))
