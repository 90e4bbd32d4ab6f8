"""Property tests of the Sparsifier over random layer shapes, sparsities, granularities, methods and criteria; and with
`granularity='filter'`, that the layer left whole is the one whose output is the model's, whatever order the layers
were registered in."""
import copy, io
import torch
from torch import nn
from hypothesis import assume, given, settings, strategies as st, HealthCheck
from lottery_nb.core import get_masks, MASK, add_masks, get_mask, prunable_layers
from lottery_nb.criteria import CRITERIA
from lottery_nb.sparsifier import Sparsifier, output_layers

conv_kinds = st.sampled_from([nn.Conv1d, nn.Conv2d, nn.Conv3d])

@st.composite
def models(draw):
    "A random stack of conv layers of one dimensionality followed by linear layers"
    conv, layers, c = draw(conv_kinds), [], draw(st.integers(1, 3))
    nd = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[conv]
    for _ in range(draw(st.integers(0, 2))):
        o, k = draw(st.integers(1, 6)), draw(st.integers(1, 3))
        layers.append(conv(c, o, k, padding=k//2)); c = o
    layers += [nn.Flatten() if nd else nn.Identity()]
    n_lin = draw(st.integers(0 if len(layers) > 1 else 1, 2))
    f = c * 4**nd
    for _ in range(n_lin):
        o = draw(st.integers(1, 12)); layers.append(nn.Linear(f, o)); f = o
    torch.manual_seed(draw(st.integers(0, 10_000)))
    return nn.Sequential(*layers), (1, layers[0].in_channels if isinstance(layers[0], (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else 0, nd)

settings.register_profile('ci', max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('ci')

def _n_units(sp):
    return {n: u.numel() for n, u in sp.unit_masks().items()}

def _pruned(sp):
    return {n: int((~u).sum()) for n, u in sp.unit_masks().items()}

def _whole_ok(model, g):
    "`prune_output=True` where filter pruning would otherwise have nothing to prune: the output layer is the only layer"
    return dict(prune_output=True) if g == 'filter' and len(prunable_layers(model)) == 1 else {}

def _gran_for(model, g):
    if g in ('vector', 'kernel'):
        lt = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
        if not any(isinstance(m, lt) for m in model.modules()): return None
        return lt
    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

@given(models(), st.floats(0, 100), st.sampled_from(['weight', 'vector', 'kernel', 'filter']),
       st.sampled_from(['local', 'global']), st.sampled_from(sorted(CRITERIA)))
def test_exact_sparsity(mi, s, g, method, crit):
    model, _ = mi
    lt = _gran_for(model, g)
    assume(lt is not None)   # vector and kernel units need a conv layer
    sp = Sparsifier(model, granularity=g, method=method, criteria=crit, layer_type=lt, **_whole_ok(model, g))
    with torch.no_grad():
        for p in model.parameters(): p.add_(torch.randn_like(p))
    sp.prune(s)
    n, k = _n_units(sp), _pruned(sp)
    if method == 'local':
        for name in n: assert k[name] == round(s / 100 * n[name]), (name, k[name], n[name], s)
    else:
        assert sum(k.values()) == round(s / 100 * sum(n.values()))
    for m in sp.layers.values():   # masked weights are exactly zero
        assert (m.weight[~get_mask(m)] == 0).all()

@given(models(), st.lists(st.floats(0, 100), min_size=2, max_size=4), st.sampled_from(['weight', 'filter']),
       st.sampled_from(['local', 'global']), st.sampled_from(sorted(CRITERIA)))
def test_monotone(mi, ss, g, method, crit):
    model, _ = mi
    sp = Sparsifier(model, granularity=g, method=method, criteria=crit, **_whole_ok(model, g))
    prev = None
    for s in sorted(ss):
        with torch.no_grad():
            for p in model.parameters(): p.add_(0.1 * torch.randn_like(p))
        sp.prune(s)
        cur = {n: m.clone() for n, m in get_masks(model).items()}
        if prev is not None:
            for n in cur: assert not (cur[n] & ~prev[n]).any(), 'a pruned weight was revived'
        prev = cur

@given(models(), st.floats(0, 100), st.sampled_from(['local', 'global']))
def test_reset_bit_for_bit(mi, s, method):
    model, _ = mi
    init = copy.deepcopy(model.state_dict())
    sp = Sparsifier(model, method=method)
    with torch.no_grad():
        for p in model.parameters(): p.mul_(1.7).add_(torch.randn_like(p))
    sp.prune(s).reset()
    for k, v in model.state_dict().items():
        if k.endswith(MASK): continue
        if k.endswith('weight') and k.rsplit('.', 1)[0] + '.' + MASK in model.state_dict():
            mask = model.state_dict()[k.rsplit('.', 1)[0] + '.' + MASK]
            assert torch.equal(v[mask], init[k][mask]) and (v[~mask] == 0).all()
        else:
            assert torch.equal(v, init[k])

@given(models(), st.floats(0, 100))
def test_masks_survive_to_and_state_dict(mi, s):
    model, _ = mi
    Sparsifier(model, method='global').prune(s)
    masks = {n: m.clone() for n, m in get_masks(model).items()}
    model.to('cpu', torch.float64)
    for n, m in get_masks(model).items(): assert m.dtype == torch.bool and torch.equal(m, masks[n])
    buf = io.BytesIO(); torch.save(model.state_dict(), buf); buf.seek(0)
    fresh = copy.deepcopy(model)
    for mod in fresh.modules():
        if hasattr(mod, 'weight') and isinstance(mod.weight, torch.Tensor):
            with torch.no_grad(): mod.weight.fill_(1.)
        if hasattr(mod, MASK): get_mask(mod).fill_(True)
    fresh.load_state_dict(torch.load(buf))
    for n, m in get_masks(fresh).items(): assert torch.equal(m, masks[n])
    for (n, a), b in zip(model.state_dict().items(), fresh.state_dict().values()): assert torch.equal(a, b), n

class Shuffled(nn.Module):
    "The layers of a `nn.Sequential`, registered in the order `order` and run in their own order"
    def __init__(self, seq, order):
        super().__init__()
        self.n = len(seq)
        for i in order: setattr(self, f'm{i}', seq[i])
    def forward(self, x):
        for i in range(self.n): x = getattr(self, f'm{i}')(x)
        return x

@given(models(), st.data(), st.floats(0, 100), st.sampled_from(['local', 'global']))
def test_filter_pruning_keeps_the_layer_that_runs_last(mi, data, s, method):
    seq, _ = mi
    order = data.draw(st.permutations(range(len(seq))))
    model = Shuffled(seq, order)
    names = list(prunable_layers(model))
    assume(len(names) >= 2)
    last = f"m{max(int(n[1:]) for n in names)}"   # the last layer to run: its output is the model's
    assert output_layers(model) == [last]
    sp = Sparsifier(model, granularity='filter', method=method).prune(s)
    assert sp.kept_out == [last] and set(sp.layers) == set(names) - {last}
    assert get_mask(getattr(model, last)).all()
    assert list(Sparsifier(Shuffled(seq, order), granularity='filter', prune_output=True).layers) == names
