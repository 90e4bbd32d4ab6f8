"""The papers' presets (lottery_nb.presets) with the runner they are for: `find_ticket` takes what a preset gives, on
stand-in data of the paper's shape; and the optimizers a preset names step as the papers' optimizers (TensorFlow's
Adam defaults, torch's SGD with momentum and coupled weight decay) do."""
import pytest, torch
from lottery_nb.data import tensor_dls
from lottery_nb.lottery import find_ticket
from lottery_nb.models import MODELS
from lottery_nb.presets import PRESETS, opt_func, LRSteps

SHAPES = {'mnist': (1, 28, 28), 'cifar10': (3, 32, 32)}

def stand_in(dataset, n=48, bs=16):
    "Random images of `dataset`'s shape, ten classes: train, valid and test"
    g = torch.Generator().manual_seed(0)
    x = lambda k: torch.randn(k, *SHAPES[dataset], generator=g)
    y = lambda k: torch.arange(k) % 10
    return tensor_dls(x(n), y(n), x(20), y(20), bs=bs, x_test=x(20), y_test=y(20), device='cpu')

@pytest.mark.parametrize('name', ['lenet300', 'conv2', 'resnet20'])
def test_find_ticket_runs_a_preset(name):
    "One round of each kind of preset (layer-wise Adam, global SGD with steps and a late rewind), its budget cut to 2 epochs"
    torch.set_num_threads(1)
    p = PRESETS[name]; dls = stand_in(p.dataset)
    kw = {**p.find_ticket_kwargs(dls), 'rounds': 1, 'epochs': 2, 'rewind': '0it' if p.rewind == '0it' else '2it'}
    df = find_ticket(p.learner(dls), controls=(), progress=False, seeds=0, **kw)
    assert list(df['round']) == [0, 1]
    left = df.pct_remaining.iloc[-1]
    assert abs(left - p.remaining(MODELS[p.model](SHAPES[p.dataset]), 1)) < 0.01, (left, p.remaining(MODELS[p.model](SHAPES[p.dataset]), 1))

def test_steps_reach_the_optimizer():
    "Under find_ticket's own fit, LRSteps sets the optimizer's rate at every training batch (3 batches an epoch here)"
    from fastai.callback.core import Callback
    p = PRESETS['resnet20']; dls = stand_in('cifar10')
    seen = []
    class Seen(Callback):
        order = LRSteps.order + 1
        def before_batch(self):
            if self.training: seen.append(self.opt.hypers[0]['lr'])
    learn = p.learner(dls)()
    learn.cbs[[type(c) for c in learn.cbs].index(LRSteps)].milestones = (2, 4)   # drops within the fit
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 5.0, cbs=[Seen()])
    assert [round(v, 6) for v in seen] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]

def _steps(opt, p, n=5):
    g = torch.Generator().manual_seed(1)
    target = torch.randn(p.shape, generator=g)
    for _ in range(n):
        loss = ((p - target) ** 2 * torch.arange(1., p.numel() + 1).view(p.shape)).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    return p.detach().clone()

def test_adam_is_tensorflows():
    "The Frankle & Carbin presets' Adam steps as torch's Adam with beta2 0.999 and eps 1e-8 (TensorFlow's defaults) does"
    start = torch.randn(4, 3)
    a = torch.nn.Parameter(start.clone()); b = torch.nn.Parameter(start.clone())
    ours = _fastai_steps(PRESETS['lenet300'].opt, a, 1e-2)
    theirs = _steps(torch.optim.Adam([b], lr=1e-2, betas=(0.9, 0.999), eps=1e-8), b)
    torch.testing.assert_close(ours, theirs)

def test_sgd_is_torchs():
    "The ResNet-20 preset's SGD steps as torch's SGD with momentum 0.9 and weight decay 1e-4 (open_lth's) does"
    start = torch.randn(4, 3)
    a = torch.nn.Parameter(start.clone()); b = torch.nn.Parameter(start.clone())
    ours = _fastai_steps(PRESETS['resnet20'].opt, a, 0.1)
    theirs = _steps(torch.optim.SGD([b], lr=0.1, momentum=0.9, weight_decay=1e-4), b)
    torch.testing.assert_close(ours, theirs)

def _fastai_steps(opt_fn, p, lr, n=5):
    "`n` steps of a fastai optimizer built by `opt_fn`, on the same loss as `_steps`"
    opt = opt_fn([p], lr=lr)
    class Shim:   # fastai's optimizer zeroes with zero_grad() as well
        def zero_grad(self): opt.zero_grad()
        def step(self): opt.step()
    return _steps(Shim(), p, n)

def test_fastai_defaults_differ():
    "The reason the presets name every argument: fastai's Adam defaults do not step as TensorFlow's Adam"
    start = torch.randn(4, 3)
    a = torch.nn.Parameter(start.clone()); b = torch.nn.Parameter(start.clone())
    ours = _fastai_steps(opt_func('Adam'), a, 1e-2)
    theirs = _steps(torch.optim.Adam([b], lr=1e-2, betas=(0.9, 0.999), eps=1e-8), b)
    assert not torch.allclose(ours, theirs)
