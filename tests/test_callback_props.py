"""Property tests of SparsifyCallback: random small models and random configurations, short fits on synthetic data.

For every draw, `CheckInvariants` asserts as the fit runs that pruned weights are zero after every step, nothing is
NaN or inf, masks never un-prune, and after every LTH reset the state equals the rewind snapshot bit for bit (batch
norm included). After the fit, the number of pruned units is exactly what the schedule's end value asks for.

`dsd` is the one schedule whose sparsity goes back down. There, masks do revive units: that is its dense phase. The
revived weights restart from zero, and at the end of the schedule the model is back at the starting sparsity."""
import os, warnings
from functools import partial
import torch
from torch import nn
from hypothesis import given, settings, strategies as st, HealthCheck, note
from fastai.basics import SGD, Adam, set_seed
from lottery_nb.all import SparsifyCallback, SCHEDULES, CRITERIA, GRANULARITIES
from lottery_nb.data import synth_dls, synth_learner
from helpers import CheckInvariants

N_EXAMPLES = int(os.environ.get('LOTTERY_FUZZ_EXAMPLES', 300))
settings.register_profile('callback', max_examples=N_EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OPTS = {'sgd_momentum': partial(SGD, mom=0.9), 'adam': Adam, 'adamw_wd': partial(Adam, decouple_wd=True, wd=0.1)}

@st.composite
def models(draw):
    "0-2 conv layers and 1-2 hidden linear layers, each with or without BN and bias, then a linear output; 6x6 or flat inputs"
    n_conv, layers = draw(st.integers(0, 2)), []
    c = 2
    for _ in range(n_conv):
        o, bias, bn = draw(st.integers(2, 6)), draw(st.booleans()), draw(st.booleans())
        layers += [nn.Conv2d(c, o, 3, padding=1, bias=bias), *([nn.BatchNorm2d(o)] if bn else []), nn.ReLU()]; c = o
    f = c*36 if n_conv else 20
    layers.append(nn.Flatten())
    for _ in range(draw(st.integers(1, 2))):
        o, bn = draw(st.integers(4, 16)), draw(st.booleans())
        layers += [nn.Linear(f, o, bias=draw(st.booleans())), *([nn.BatchNorm1d(o)] if bn else []), nn.ReLU()]; f = o
    layers.append(nn.Linear(f, 2, bias=draw(st.booleans())))
    return nn.Sequential(*layers), n_conv > 0

@st.composite
def configs(draw, has_conv):
    gs = [g for g in GRANULARITIES if has_conv or g in ('weight', 'filter')]
    g = draw(st.sampled_from(gs))
    n_epoch = draw(st.integers(2, 3))
    rewind = draw(st.integers(0, n_epoch - 1))
    start = draw(st.one_of(st.none(), st.floats(rewind, n_epoch - 0.5)))
    end = draw(st.one_of(st.none(), st.floats((start if start is not None else rewind) + 0.25, n_epoch)))
    return dict(sparsity=draw(st.floats(0, 95)), granularity=g, method=draw(st.sampled_from(['local', 'global'])),
                criteria=draw(st.sampled_from(sorted(CRITERIA))), sched_func=draw(st.sampled_from(sorted(SCHEDULES))),
                start_epoch=start, end_epoch=end, reset=draw(st.sampled_from([None, 'lth'])), rewind=rewind,
                layer_type=(nn.Conv2d,) if g in ('vector', 'kernel') else (nn.Conv2d, nn.Linear)), n_epoch

@given(st.data())
@settings(settings.get_profile('callback'))
def test_callback_invariants(data):
    model, has_conv = data.draw(models())
    cfg, n_epoch = data.draw(configs(has_conv))
    opt = data.draw(st.sampled_from(sorted(OPTS)))
    note(f'{model}\n{cfg}\nn_epoch={n_epoch} opt={opt}')
    set_seed(data.draw(st.integers(0, 1000)))
    dls = synth_dls(n=96, bs=16, shape=(2, 6, 6) if has_conv else (20,))
    learn = synth_learner(model, dls, opt_func=OPTS[opt])
    cb = SparsifyCallback(**cfg)
    dsd = cfg['sched_func'] == 'dsd'
    chk = CheckInvariants(cb, monotone=not dsd)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit(n_epoch, 1e-2, cbs=[cb, chk])
    assert chk.steps == n_epoch * len(dls.train)
    # the schedule's end value, pruned exactly: per layer for local, over all units for global
    target = cb.scheduled(n_epoch)
    units = cb.sparsifier.unit_masks()
    pruned = {n: int((~u).sum()) for n, u in units.items()}
    if cfg['method'] == 'local':
        for n, u in units.items(): assert pruned[n] == round(target/100 * u.numel()), (n, pruned[n], u.numel(), target)
    else:
        assert sum(pruned.values()) == round(target/100 * sum(u.numel() for u in units.values()))
    if dsd: assert target == 0 and sum(pruned.values()) == 0   # back to dense at the end of the schedule
    if cfg['reset'] == 'lth' and any(e['event'] == 'prune' for e in cb.events): assert chk.resets >= 1
