"Masks, resets and the callback on a GPU. Skipped where no CUDA device is present."
import warnings
import pytest, torch
from torch import nn
from lottery_nb.core import masked_layers, MASK, get_mask
from lottery_nb.sparsifier import Sparsifier
warnings.filterwarnings('ignore')
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device here')

@cuda
def test_masks_move_and_hold_on_cuda():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(20, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    init = {k: v.clone() for k, v in m.state_dict().items()}
    sp = Sparsifier(m, method='global').prune(70)
    m.cuda()
    for l in masked_layers(m).values(): assert get_mask(l).is_cuda and get_mask(l).dtype == torch.bool
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        loss = m(torch.randn(32, 20, device='cuda')).pow(2).mean(); loss.backward(); opt.step(); opt.zero_grad()
    m(torch.randn(2, 20, device='cuda'))   # the hook re-applies masks before the forward
    for l in masked_layers(m).values(): assert (l.weight[~get_mask(l)] == 0).all()
    sp.reset()
    for k, v in m.state_dict().items():
        if k.endswith(MASK): continue
        mk = k.rsplit('.', 1)[0] + '.' + MASK
        if mk in m.state_dict(): v = v[m.state_dict()[mk]]; w = init[k].cuda()[m.state_dict()[mk]]
        else: w = init[k].cuda()
        assert torch.equal(v, w), k

@cuda
def test_callback_on_cuda():
    from lottery_nb.callback import SparsifyCallback
    from lottery_nb.schedules import iterative
    from lottery_nb.data import synth_learner, synth_dls
    learn = synth_learner(dls=synth_dls(device='cuda'))
    init = {k: v.clone().cuda() for k, v in learn.model.state_dict().items()}
    learn.fit(3, 1e-2, cbs=SparsifyCallback(sparsity=60, sched_func=iterative, reset='lth'))
    m = learn.model[0]
    assert m.weight.is_cuda
    assert torch.equal(m.weight.detach()[m.lth_mask], init['0.weight'][m.lth_mask])
    assert torch.equal(learn.model[1].running_mean, init['1.running_mean'])
