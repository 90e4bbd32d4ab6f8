"A Ctrl-C that lands inside a prune or a reset waits until it is done, so no model is left half-changed."
import os, signal
import pytest, torch
from torch import nn
from lottery_nb.core import get_masks, MASK
from lottery_nb.sparsifier import Sparsifier
from lottery_nb.core import uninterrupted

def test_uninterrupted_defers_sigint():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            done.append(True)
    assert done == [True]

def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.BatchNorm1d(30), nn.Linear(30, 10))

def test_reset_is_whole_when_interrupted(monkeypatch):
    model = _model(); sp = Sparsifier(model)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters(): p.add_(1.)
    sp.prune(50)
    orig_copy, calls = torch.Tensor.copy_, []
    def copy_and_interrupt(self, src, *a, **k):   # Ctrl-C arrives after the first tensor is copied
        if not calls: os.kill(os.getpid(), signal.SIGINT)
        calls.append(1)
        return orig_copy(self, src, *a, **k)
    monkeypatch.setattr(torch.Tensor, 'copy_', copy_and_interrupt)
    with pytest.raises(KeyboardInterrupt): sp.reset()
    monkeypatch.undo()
    for k, v in model.state_dict().items():
        if k.endswith(MASK): continue
        mk = k.rsplit('.', 1)[0] + '.' + MASK
        if k.endswith('weight') and mk in model.state_dict():
            m = model.state_dict()[mk]
            assert torch.equal(v[m], init[k][m])
        else: assert torch.equal(v, init[k]), k
