"A global prune of torchvision's resnet50 (25M prunable weights), where torch.quantile would fail."
import torch
from torchvision import models
from lottery_nb.core import sparsity
from lottery_nb.sparsifier import Sparsifier

def test_resnet50_global_80():
    torch.manual_seed(0)
    m = models.resnet50()
    sp = Sparsifier(m, method='global')
    n = sum(l.weight.numel() for l in sp.layers.values())
    assert n > 16_000_000
    sp.prune(80)
    zeros = sum(int((l.weight == 0).sum()) for l in sp.layers.values())
    assert zeros == round(0.8 * n)
    assert abs(sparsity(m) - 80) < 1e-4
