"""Run by tests/test_distributed.py under `torch.distributed.run --nproc_per_node 2`: SparsifyCallback inside
fastai's `learn.distrib_ctx(cpu=True)` (Accelerate, DDP, gloo). Each rank seeds its model differently on purpose;
after every prune and every reset a checker compares the whole state (weights, batch-norm buffers, masks) across ranks.
Rank 0 writes what it saw to OUT/result.json and the ticket to OUT/ticket.safetensors."""
import json, os, sys, warnings
warnings.filterwarnings('ignore')
import torch, torch.distributed as dist
from fastai.basics import *
from fastai.distributed import DistributedDL
from lottery_nb.all import *

def _broadcast_cpu(self, t, rank):
    "fastai's DistributedDL sends its shuffled indices through a CUDA tensor; with gloo on CPU a CPU tensor does it"
    t = torch.tensor(t, dtype=torch.long); dist.broadcast(t, rank); return t.tolist()
DistributedDL._broadcast = _broadcast_cpu   # this test process only: the library never patches fastai

def dataset():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g); y = (x[:, :10].sum(1) > 0).long()
    return list(zip(x, y))

def model(bn):
    return nn.Sequential(nn.Linear(20, 32), *([nn.BatchNorm1d(32)] if bn else []), nn.ReLU(), nn.Linear(32, 2))

def state_vec(m): return torch.cat([v.detach().float().flatten() for v in unwrap_model(m).state_dict().values()])

class CheckRanks(Callback):
    "After each prune or reset of the SparsifyCallback, compare the full state of every rank with rank 0's"
    order = SparsifyCallback.order + 1
    def __init__(self, cb): self.cb, self.seen, self.checks = cb, 0, []
    def _check(self, what):
        v = state_vec(self.model); vs = [torch.empty_like(v) for _ in range(dist.get_world_size())]
        dist.all_gather(vs, v)
        self.checks.append(dict(what=what, iter=self.train_iter, identical=all(torch.equal(vs[0], o) for o in vs[1:]),
                                sparsity=self.cb.sparsifier.pruned_pct))
    def after_batch(self):
        for e in self.cb.events[self.seen:]: self._check(e['event'])
        self.seen = len(self.cb.events)
    def after_fit(self): self.after_batch(); self._check('end of fit')   # the last reset happens in after_fit

def main(out, bn):
    rank = int(os.environ['RANK'])
    torch.manual_seed(100 + rank)   # different initial weights on each rank: DDP must make them rank 0's
    m = model(bn)
    init = {k: v.clone() for k, v in m.state_dict().items()}
    ds = dataset()
    dls = DataLoaders(DataLoader(ds[:192], bs=16, shuffle=False), DataLoader(ds[192:], bs=32))
    learn = Learner(dls, m, loss_func=CrossEntropyLossFlat(), metrics=accuracy, opt_func=Adam)
    cb = SparsifyCallback(sparsity=60, method='global', sched_func=iterative, reset='lth')
    chk = CheckRanks(cb)
    with learn.no_bar(), learn.no_logging(), learn.distrib_ctx(cpu=True, sync_bn=False):
        learn.fit(3, 1e-2, cbs=[cb, chk])
        if rank == 0:
            save_ticket(Path(out)/'ticket.safetensors', cb)
            json.dump(dict(checks=chk.checks, n_train=cb.n_train, world_size=dist.get_world_size(),
                           events=[e['event'] for e in cb.events], sparsity=cb.sparsifier.pruned_pct),
                      open(Path(out)/'result.json', 'w'))
            torch.save(init, Path(out)/'init_rank0.pt')
        dist.barrier()   # leave together: a rank that tears the process group down while the other still works aborts
    (Path(out)/f'done{rank}').write_text('ok')   # this rank finished its work: what follows is torch's teardown
    sys.stdout.flush(); sys.stderr.flush()
    os._exit(0)   # skip the interpreter's teardown, where gloo's threads can abort the exit (SIGABRT)

if __name__ == '__main__': main(sys.argv[1], sys.argv[2] == 'bn')
