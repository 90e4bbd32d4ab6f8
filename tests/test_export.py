"""export_pruned: the exported model computes what the (silenced) ticket computes, on an MLP, ResNet-18 and a model
with residual additions and a concatenation; it trains, saves and reloads; bad tickets fail clearly."""
import warnings
from copy import deepcopy
import pytest, torch
from torch import nn
pytest.importorskip('torch_pruning', reason="export needs the export extra: pip install 'lottery-nb[export]'")
from fastai.basics import Learner, load_learner
import fastai.callback.progress  # noqa: F401 (Learner.no_bar)
from lottery_nb.core import prunable_layers, set_masks, get_masks, sparsity
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.models import mlp, tv_resnet18 as resnet18
from lottery_nb.data import synth_dls
from lottery_nb.export import export_pruned, silence_dead_channels, dead_units, n_params

class Residual(nn.Module):
    "Two residual stages and a concatenation: channels coupled across an add and offset by a cat"
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.b = nn.Sequential(nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.c = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.a(x))
        return self.head(torch.cat([self.b(x), self.c(x)], 1))

def _randomize_norms(m):
    g = torch.Generator().manual_seed(0)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5, generator=g); bn.running_var.uniform_(0.5, 2, generator=g)
            bn.weight.data.uniform_(0.5, 1.5, generator=g); bn.bias.data.uniform_(-0.3, 0.3, generator=g)
    return m

CASES = [('mlp', lambda: mlp(40), lambda: torch.randn(8, 40), None),
         ('resnet18', lambda: _randomize_norms(resnet18()), lambda: torch.randn(4, 3, 32, 32), nn.Conv2d),
         ('residual', lambda: _randomize_norms(Residual()), lambda: torch.randn(4, 3, 12, 12), nn.Conv2d)]

@pytest.mark.parametrize('name, make, inputs, lt', CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize('pct', [30, 70])
def test_parity_with_the_silenced_ticket(name, make, inputs, lt, pct):
    torch.manual_seed(pct)
    m, x = make(), inputs()
    Sparsifier(m, granularity='filter', **({} if lt is None else dict(layer_type=lt))).prune(pct)
    masks = get_masks(m)
    counts = silence_dead_channels(m, x)
    assert counts, 'some channels should be removable'
    e = export_pruned(m, x, verbose=False)
    assert n_params(e) < n_params(m)
    m.eval(); e.eval()
    for _ in range(3):
        xi = inputs()
        with torch.no_grad(): assert torch.allclose(e(xi), m(xi), atol=1e-5, rtol=1e-5)
    assert all(torch.equal(masks[k], v) for k, v in get_masks(m).items()), 'export must not change the ticket'
    # every removed channel was dead, and the layers that remain have no removable dead channel left
    for n, l in prunable_layers(e).items():
        assert l.weight.shape[0] >= prunable_layers(m)[n].weight.shape[0] - len(dead_units(prunable_layers(m)[n]))

def test_unsilenced_export_warns_with_the_difference():
    torch.manual_seed(0)
    m, x = _randomize_norms(Residual()), torch.randn(4, 3, 12, 12)
    Sparsifier(m, granularity='filter', layer_type=nn.Conv2d).prune(60)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        export_pruned(m, x, verbose=False)
    msg = [str(o.message) for o in w if 'silence_dead_channels' in str(o.message)]
    assert msg and 'differ from the ticket' in msg[0]

def test_exported_model_trains_saves_and_reloads(tmp_path):
    torch.manual_seed(0)
    dls = synth_dls(shape=(3, 8, 8), seed=0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    Sparsifier(net, granularity='filter', layer_type=nn.Conv2d).prune(50)
    xb = dls.one_batch()[0]
    silence_dead_channels(net, xb)
    e = export_pruned(net, xb, verbose=False)
    learn = Learner(dls, e, loss_func=nn.CrossEntropyLoss())
    w0 = deepcopy(e.state_dict())
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    assert any(not torch.equal(w0[k], v) for k, v in e.state_dict().items()), 'the exported model should train'
    torch.save(e, tmp_path/'small.pt')
    back = torch.load(tmp_path/'small.pt', weights_only=False).eval(); e.eval()
    with torch.no_grad(): assert torch.equal(back(xb), e(xb))
    learn.export(tmp_path/'learn.pkl')
    l2 = load_learner(tmp_path/'learn.pkl')
    l2.model.eval()
    with torch.no_grad(): assert torch.equal(l2.model(xb), e(xb))

def test_a_layer_losing_every_unit_is_an_error_and_changes_nothing():
    m, x = mlp(40), torch.randn(4, 40)
    set_masks(m, {'3': torch.zeros(100, 300, dtype=torch.bool)})
    before = deepcopy(m.state_dict())
    with pytest.raises(ValueError, match="layer '3' has all 100"):
        export_pruned(m, x)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
