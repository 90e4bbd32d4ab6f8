"KeyboardInterrupt at any point of a batch leaves a consistent model: masks applied, hooks back, no stale column."
import warnings
import pytest, torch
from torch import nn
from fastai.learner import Learner
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.callback.core import Callback
from fastai.optimizer import Adam, Optimizer
from fastai.losses import CrossEntropyLossFlat
from lottery_nb.core import masked_layers, MASK, get_mask
from lottery_nb.callback import SparsifyCallback
from lottery_nb.data import synth_learner
from lottery_nb.schedules import iterative, annealing_linear
warnings.filterwarnings('ignore')

def learner(opt_func=Adam): return synth_learner(opt_func=opt_func)

class InterruptAt(Callback):
    "Raise KeyboardInterrupt at `event` of training iteration `it`, just before or just after SparsifyCallback's turn"
    def __init__(self, event, it, where='after'): self.event, self.it, self.order = event, it, SparsifyCallback.order + (1 if where == 'after' else -1)
    def __call__(self, event_name):
        if event_name == self.event and self.learn.training and self.learn.train_iter == self.it: raise KeyboardInterrupt

def check_consistent(learn):
    for m in masked_layers(learn.model).values():
        assert (m.weight[~get_mask(m)] == 0).all(), 'a pruned weight is non-zero after the interrupt'
        assert len(m._forward_pre_hooks) == 1, 'the mask hook was not put back'
    assert 'sparsity' not in [getattr(o, 'name', None) for o in learn.metrics], 'the sparsity column was left behind'

@pytest.mark.parametrize('event', ['before_batch', 'after_loss', 'before_step', 'after_step', 'after_batch'])
@pytest.mark.parametrize('it', [3, 7, 8])
@pytest.mark.parametrize('where', ['before', 'after'])
def test_interrupt_in_batch(event, it, where):
    learn = learner()
    cb = SparsifyCallback(sparsity=60, sched_func=iterative, reset='lth')
    with pytest.raises(KeyboardInterrupt):
        learn.fit(3, 1e-2, cbs=[cb, InterruptAt(event, it, where)])
    check_consistent(learn)
    # a later fit keeps the masks; a plain forward does too
    zeros = {n: (m.weight == 0).clone() for n, m in masked_layers(learn.model).items()}
    learn.fit(1, 1e-2)
    learn.model.eval()(torch.randn(2, 20))
    for n, m in masked_layers(learn.model).items(): assert ((m.weight == 0) | ~zeros[n]).all()

def _interrupting_step(p, lr, **kw):
    "An optimizer step that moves a weight, then is interrupted before the others"
    p.data.add_(1.)
    if p.ndim == 2 and p.shape[0] == 2: raise KeyboardInterrupt
    return {}

def test_interrupt_inside_optimizer_step():
    learn = learner(opt_func=lambda params, lr: Optimizer(params, [_interrupting_step], lr=lr))
    from lottery_nb.sparsifier import Sparsifier
    Sparsifier(learn.model).prune(50)
    with pytest.raises(KeyboardInterrupt):
        learn.fit(1, 1e-2, cbs=SparsifyCallback(sparsity=50, sched_func=annealing_linear))
    check_consistent(learn)
