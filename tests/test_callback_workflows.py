"learn.export() / load_learner with a pruned model: the masks and their hooks come back, and the zeros hold."
import torch
from fastai.basics import Learner, CrossEntropyLossFlat, load_learner
from lottery_nb.all import SparsifyCallback, iterative, mnist1d_dls, masked_layers, get_masks
from lottery_nb.models import mlp

def test_export_and_load_learner_keep_masks(tmp_path):
    torch.manual_seed(0)
    learn = Learner(mnist1d_dls(bs=128), mlp(40, (32,)), loss_func=CrossEntropyLossFlat())
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2, cbs=SparsifyCallback(sparsity=70, sched_func=iterative, reset='lth'))
    learn.export(tmp_path/'export.pkl')
    back = load_learner(tmp_path/'export.pkl')
    masks = get_masks(learn.model)
    for n, m in get_masks(back.model).items(): assert torch.equal(m, masks[n])
    for m in masked_layers(back.model).values():
        with torch.no_grad(): m.weight.add_(1.)           # a training loop that knows nothing about masks
    back.model.eval()(torch.randn(2, 40))                 # the hook zeroes the pruned weights before the forward
    for m in masked_layers(back.model).values(): assert (m.weight[~m.lth_mask] == 0).all()
