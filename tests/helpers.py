"""Shared by the tests: a callback that checks the callback's promises as it runs (the learner is
`lottery_nb.data.synth_learner`), and `as_before`, for a run in the tests' own process."""
import contextlib, random
import numpy as np, torch
from fastai.basics import Callback
from lottery_nb.core import masked_layers, MASK, get_mask
from lottery_nb.callback import SparsifyCallback

class CheckInvariants(Callback):
    """Runs right after `cb` and asserts, as the fit goes: pruned weights are exactly zero and everything is finite
    after every step; masks never un-prune (unless `monotone=False`, and then revived weights restart from zero);
    after every LTH reset the whole state equals the rewind snapshot, survivors bit for bit, batch norm included."""
    order = SparsifyCallback.order + 1
    def __init__(self, cb, monotone=True): self.cb, self.monotone, self.seen, self.steps, self.resets, self.prev = cb, monotone, 0, 0, 0, None
    def _masks(self): return {n: get_mask(m).clone() for n, m in masked_layers(self.cb.sparsifier.model).items()}
    def after_step(self):
        for n, m in masked_layers(self.cb.sparsifier.model).items():
            assert (m.weight[~get_mask(m)] == 0).all(), f'a pruned weight of layer {n} is non-zero after a step'
        for k, v in self.cb.sparsifier.model.state_dict().items():
            if v.is_floating_point(): assert torch.isfinite(v).all(), f'{k} holds NaN or inf'
        self.steps += 1
    def _check_masks(self):
        cur = self._masks()
        if self.prev is not None:
            for n, m in cur.items():
                revived = m & ~self.prev[n]
                if self.monotone: assert not revived.any(), f'layer {n} un-pruned a weight'
                elif revived.any():
                    w = masked_layers(self.cb.sparsifier.model)[n].weight.detach()
                    assert (w[revived] == 0).all(), f'a revived weight of layer {n} did not restart from zero'
        self.prev = cur
    def _check_reset(self):
        sp = self.cb.sparsifier; masks = self._masks()
        for k, v in sp.model.state_dict().items():
            if k.endswith(MASK): continue
            layer = k.rsplit('.', 1)[0] if '.' in k else ''
            snap = sp.rewind_state[k].to(v.device)
            if k.endswith('weight') and layer in masks:
                keep = masks[layer]
                assert torch.equal(v[keep], snap[keep]) and (v[~keep] == 0).all(), f'{k} is not its rewind value after a reset'
            else: assert torch.equal(v, snap), f'{k} is not its rewind value after a reset'
        self.resets += 1
    def after_batch(self):
        if not self.training: return
        for e in self.cb.events[self.seen:]:
            if e['event'] == 'reset': self._check_reset()
        self.seen = len(self.cb.events)
        self._check_masks()
    def after_fit(self):
        for e in self.cb.events[self.seen:]:
            if e['event'] == 'reset': self._check_reset()
        self.seen = len(self.cb.events)
        self._check_masks()

@contextlib.contextmanager
def as_before():
    "torch's thread count and the random states of torch, numpy and random put back after a run in this process"
    threads, py, npr = torch.get_num_threads(), random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(): yield
    finally: torch.set_num_threads(threads); random.setstate(py); np.random.set_state(npr)
