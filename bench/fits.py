"""What the sections share: the arms of a fit (plain fastai, a bare-mask floor, lottery_nb, torch.nn.utils.prune,
fasterai) and the prunes they compare, all at `PRUNED` percent."""
import contextlib, copy, functools, io, time
import torch
from torch import nn
from torch.nn.utils import prune as tprune
from fastai.basics import Learner, Callback, CrossEntropyLossFlat, Adam, SGD, accuracy
from fastai.data.core import DataLoaders
import fastai.callback.progress  # noqa: F401 (no_bar)
from lottery_nb.core import remove_masks, has_mask
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.callback import SparsifyCallback
from lottery_nb.schedules import annealing_no, one_shot

PRUNED = 80   # percent pruned wherever a mask is held

OPTS = {'Adam': (Adam, 1e-3, dict(wd=0.)),   # fastai's Adam decays weights by 0.01 unless told not to
        'AdamW wd=0.01': (Adam, 1e-3, dict(wd=0.01, decouple_wd=True)),
        'SGD mom=0.9': (SGD, 1e-2, dict(mom=0.9))}

def prunable(m): return [(l, 'weight') for l in m.modules() if isinstance(l, (nn.Linear, nn.Conv2d))]

def premask(m):
    "Prune 80% of every layer in place (lottery_nb's local magnitude prune), masks on the model"
    Sparsifier(m).prune(PRUNED); return m

def torch_global(m):
    "`torch.nn.utils.prune`'s global magnitude prune of `m` to `PRUNED` percent"
    tprune.global_unstructured(prunable(m), pruning_method=tprune.L1Unstructured, amount=PRUNED/100)

def fai_global(fai, m):
    "fasterai's global magnitude `Sparsifier` on `m` (call its `sparsify_model(PRUNED/100)`)"
    return fai['Sparsifier'](m, 'weight', 'global', fai['large_final'], layer_type=(nn.Linear, nn.Conv2d))

def limit(dls, n_train, n_valid):
    "The same loaders cut to their first `n_train` / `n_valid` samples (the training ones still shuffled)"
    return DataLoaders(*[type(dl)(dl.dataset, bs=dl.bs, shuffle=dl.shuffle, drop_last=dl.drop_last, n=min(n, len(dl.dataset)))
                         for dl, n in zip(dls.loaders[:2], (n_train, n_valid))], device='cpu')

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

@functools.lru_cache(maxsize=1)
def initial(model_fn, seed):
    "The model every arm starts from (one at a time is kept: clear it for the next model)"
    torch.manual_seed(seed); return model_fn()

def fit_arm(arm, model_fn, dls, opt, epochs, fai=None, seed=0):
    "One fit of `arm` on a copy of `model_fn()`'s model; its wall time (s) and its training-phase time (s)"
    opt_func, lr, kw = OPTS[opt]
    m = copy.deepcopy(initial(model_fn, seed)); cbs = []
    if arm == 'bare-mask floor': remove_masks(premask(m)); cbs = [FloorCallback(m)]   # zeros kept, lottery_nb's hooks gone
    elif arm == 'lottery_nb fixed mask':
        premask(m); cbs = [SparsifyCallback(sparsity=PRUNED, sched_func=annealing_no)]
    elif arm == 'lottery_nb prune, reset=lth':
        cbs = [SparsifyCallback(sparsity=PRUNED, sched_func=one_shot, reset='lth')]
    elif arm == 'torch.nn.utils.prune':
        for l, n in prunable(m): tprune.l1_unstructured(l, n, amount=PRUNED/100)
    elif arm == 'fasterai 0.4.1':
        cbs = [fai['Callback'](PRUNED/100, 'weight', 'local', fai['large_final'], fai['Schedule'](fai['sched_oneshot'], start_pct=0.),
                               lth=True, layer_type=(nn.Linear, nn.Conv2d))]
    tt = TrainTime()
    learn = Learner(dls, m, loss_func=CrossEntropyLossFlat(), opt_func=functools.partial(opt_func, **kw), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(), contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter(); learn.fit(epochs, lr, cbs=cbs + [tt]); t = time.perf_counter() - t0
    if arm == 'bare-mask floor': assert not any(has_mask(l) or l._forward_pre_hooks for l, _ in prunable(m))
    if arm in ('lottery_nb fixed mask', 'lottery_nb prune, reset=lth', 'bare-mask floor'):
        assert abs(sum(int((l.weight == 0).sum()) for l, _ in prunable(m)) / sum(l.weight.numel() for l, _ in prunable(m)) - PRUNED/100) < .01
    return t, tt.t
